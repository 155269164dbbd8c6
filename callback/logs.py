"""Logging that never shows a phone number or a secret."""
import logging
import re

_PHONE = re.compile(r"(?<![A-Za-z0-9])\+?\d[\d\- ().]{8,}\d(?![A-Za-z0-9])")
_SECRET_KEYS = re.compile(r"(?i)(auth_token|password|secret|authorization|token)(['\"]?\s*[:=]\s*['\"]?)[^\s,'\"}]+")


def redact(text):
    """Mask digit runs that look like phone numbers and values of secret-looking keys."""
    text = _PHONE.sub(lambda m: "*" * max(len(re.sub(r"\D", "", m.group())) - 2, 0)
                      + re.sub(r"\D", "", m.group())[-2:], text)
    return _SECRET_KEYS.sub(lambda m: m.group(1) + m.group(2) + "***", text)


_installed = False


def _redacting_factory(base):
    def factory(*args, **kwargs):
        record = base(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    return factory


def install(level="INFO"):
    """Redact every log record of the process at creation (idempotent), so no handler,
    ours or Lambda's, can print a phone number or a secret."""
    global _installed
    if not _installed:
        logging.setLogRecordFactory(_redacting_factory(logging.getLogRecordFactory()))
        _installed = True
    logger = logging.getLogger("callback")
    logger.setLevel(level)
    # The twilio client logs every request's headers at INFO: noise, and no use to on-call.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    # At DEBUG botocore logs every response body, Parameter Store's decrypted SecureStrings
    # among them: never below INFO, whatever the level of the rest.
    logging.getLogger("botocore.parsers").setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
    return logger
