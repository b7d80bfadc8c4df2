"""moto with IAM enforced, and README's bucket policy as moto needs it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
import re
from typing import Any

import boto3
from moto import settings as moto_settings
from moto.core.authorization import ActionAuthenticatorMixin
import pytest

from custom_components.s3_glacier.const import CONF_ACCESS_KEY_ID, CONF_SECRET_ACCESS_KEY

from .conftest import BUCKET, REGION

README = Path(__file__).parents[1] / "README.md"


def readme_policies() -> list[dict[str, Any]]:
    """Every JSON block of README.md that is an IAM policy."""
    blocks = re.findall(r"```json\n(.*?)```", README.read_text(), re.S)
    return [json.loads(block) for block in blocks if '"Statement"' in block]


def readme_policy(service: str) -> dict[str, Any]:
    """README's one policy for ``service`` (``s3`` or ``glacier``)."""
    (policy,) = [
        p for p in readme_policies() if f"arn:aws:{service}:" in json.dumps(p["Statement"])
    ]
    return policy


def moto_bucket_policy(without: str = "") -> str:
    """README's bucket policy for the test bucket, as moto needs it, less ``without``.

    moto authorises HeadBucket as s3:HeadBucket where AWS uses s3:ListBucket.
    """
    policy = copy.deepcopy(readme_policy("s3"))
    for statement in policy["Statement"]:
        statement["Resource"] = statement["Resource"].replace("YOUR-BUCKET", BUCKET)
        actions = [a for a in statement["Action"] if a != without]
        if "s3:ListBucket" in actions:
            actions.append("s3:HeadBucket")
        statement["Action"] = actions
    return json.dumps(policy)


class Moto:
    """moto with IAM enforced: the README user's keys and an admin client to arrange."""

    def __init__(self, policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.iam = boto3.client("iam", region_name=REGION)
        self.iam.create_user(UserName="archiver")
        self.set_policy(policy)
        key = self.iam.create_access_key(UserName="archiver")["AccessKey"]
        self.keys = {
            CONF_ACCESS_KEY_ID: key["AccessKeyId"],
            CONF_SECRET_ACCESS_KEY: key["SecretAccessKey"],
        }
        self.iam.create_user(UserName="admin")
        self.iam.put_user_policy(
            UserName="admin",
            PolicyName="all",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
        )
        admin = self.iam.create_access_key(UserName="admin")["AccessKey"]
        session = boto3.session.Session(
            aws_access_key_id=admin["AccessKeyId"],
            aws_secret_access_key=admin["SecretAccessKey"],
            region_name=REGION,
        )
        self.s3 = session.client("s3")
        self.iam = session.client("iam")
        monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
        monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)

    def set_policy(self, policy: str) -> None:
        self.iam.put_user_policy(UserName="archiver", PolicyName="readme", PolicyDocument=policy)

    def uploads(self) -> list[str]:
        return [u["Key"] for u in self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]
