"""Secrets from SSM Parameter Store, AWS's place for SecureStrings: with
CALLBACK_SECRETS_SSM_PATH set (e.g. /callback/dev/), start-up reads every parameter directly
under that path, decrypted, and each fills in the setting named by its last path segment
(/callback/dev/TWILIO_AUTH_TOKEN sets TWILIO_AUTH_TOKEN) unless the environment sets it.

The read is bounded (short timeouts, one retry) and never fatal: when it fails, one error
says why, without a value, and the app starts without those secrets, so the health check
names them and the webhooks answer their safe TwiML.

IAM for the function's role:
- ssm:GetParametersByPath on arn:aws:ssm:<region>:<account>:parameter/callback/dev. The
  action is authorized against the path in the request, not the parameters returned, and
  the path is sent without its trailing slash, so that ARN is exactly the resource.
- kms:Decrypt on the key, only when a customer-managed KMS key encrypts the SecureStrings.
  The AWS-managed key aws/ssm already lets every principal of the account decrypt.
"""
import logging
import os
from dataclasses import fields

from botocore.config import Config as BotocoreConfig
from botocore.exceptions import BotoCoreError, ClientError

from callback.config import Config
from callback.storage.client import botocore_session

log = logging.getLogger(__name__)

# Start-up waits for this read (a Lambda cold start, with a caller on the line): a short
# connect, a short read, and one retry for a throttle when many containers start at once.
CONNECT_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 2.0
MAX_ATTEMPTS = 2
# The most GetParametersByPath returns a page.
PAGE_SIZE = 10
# Settings a parameter may not fill in: the path itself.
NOT_FROM_PARAMETERS = {"CALLBACK_SECRETS_SSM_PATH", "extra"}


class ParameterStoreError(Exception):
    """Parameter Store could not be read."""


def request_path(path):
    """The path as sent: no trailing slash, the form the IAM resource ARN names."""
    return path.rstrip("/") or "/"


def read_parameters(path, region, endpoint_url=None):
    """Name -> value of every parameter directly under `path`, SecureStrings decrypted, each
    named by its last path segment. Raises ParameterStoreError; never logs a value."""
    try:
        client = botocore_session().create_client(
            "ssm", region, endpoint_url=endpoint_url or None,
            config=BotocoreConfig(connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS,
                                  retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"}))
        pages = client.get_paginator("get_parameters_by_path").paginate(
            Path=request_path(path), WithDecryption=True, Recursive=False,
            PaginationConfig={"PageSize": PAGE_SIZE})
        return {parameter["Name"].rsplit("/", 1)[-1]: parameter["Value"]
                for page in pages for parameter in page.get("Parameters", [])}
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise ParameterStoreError(f"{error.get('Code', 'error')}: {error.get('Message', '')}"[:500]) from exc
    except (BotoCoreError, ValueError) as exc:
        # ValueError: botocore's answer to an endpoint URL it cannot use.
        raise ParameterStoreError(f"{type(exc).__name__}: {exc}"[:500]) from exc


def with_parameters(config, overrides=None, environ=None):
    """`config` with the parameters under its CALLBACK_SECRETS_SSM_PATH filling in the
    settings the environment leaves unset or empty (overrides still win over both). Without a
    path, or when the read fails (logged once), `config` as it is."""
    path = config.CALLBACK_SECRETS_SSM_PATH
    if not path:
        return config
    try:
        found = read_parameters(path, config.AWS_REGION, config.AWS_ENDPOINT_URL_SSM)
    except ParameterStoreError as exc:
        log.error("could not read secrets from SSM Parameter Store path %s: %s — starting without them "
                  "(check the role's ssm:GetParametersByPath on the path and kms:Decrypt on a "
                  "customer-managed key)", request_path(path), exc)
        return config
    environ = os.environ if environ is None else environ
    known = {f.name for f in fields(Config)} - NOT_FROM_PARAMETERS
    unknown = sorted(name for name in found if name not in known)
    if unknown:
        log.warning("SSM Parameter Store path %s: no setting is named %s; ignored",
                    request_path(path), ", ".join(unknown))
    filled = {name: value for name, value in found.items() if name in known and not environ.get(name)}
    log.info("SSM Parameter Store path %s: %d parameters, filled in %s", request_path(path), len(found),
             ", ".join(sorted(filled)) or "nothing the environment lacked")
    return Config.from_env({**environ, **filled}, **(overrides or {}))
