"""What checking an API token costs (`make bench ARGS="--only tokens"`): the HMAC-SHA256
the app computes on every API request, against a password hash (werkzeug's scrypt, its
default parameters) of the same token, and the bootstrap token's constant-time compare.
CPU time per check, the HMAC measured in the same run as the baseline."""
import hmac
import statistics
import time

from werkzeug.security import check_password_hash, generate_password_hash

from callback.domain import api_tokens as t

SECTION = "## API token check: HMAC-SHA256 against scrypt"


def _cpu_per_call(check, repeat, rounds=5):
    """Median over `rounds` of the CPU seconds one call of `check` takes (`repeat` calls a round)."""
    samples = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(repeat):
            check()
        samples.append((time.process_time() - start) / repeat)
    return statistics.median(samples)


def _ratio(ratio):
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2f}x"


def section(quick=False):
    """The section's lines."""
    secret, token = "bench-api-token-secret", t.new_token()
    stored_hmac = t.key_hash(secret, token)
    stored_scrypt = generate_password_hash(token)
    bootstrap = t.new_token()
    checks = [
        ("HMAC-SHA256 of the token, the baseline", lambda: t.key_hash(secret, token) == stored_hmac,
         2_000 if quick else 20_000),
        ("the app's check: form and checksum, then the HMAC",
         lambda: t.well_formed(token) and t.key_hash(secret, token) == stored_hmac,
         2_000 if quick else 20_000),
        ("bootstrap token: constant-time compare",
         lambda: hmac.compare_digest(token.encode(), bootstrap.encode()), 2_000 if quick else 20_000),
        (f"scrypt ({stored_scrypt.split('$')[0]}) of the token",
         lambda: check_password_hash(stored_scrypt, token), 2 if quick else 10),
    ]
    costs = [(name, _cpu_per_call(check, repeat, rounds=3 if quick else 5)) for name, check, repeat in checks]
    baseline = costs[0][1]
    lines = [SECTION, "",
             "CPU time per check, median of rounds, one process on this machine. Lambda at 512 MB "
             "gets about a third of a core, so each figure is some three times longer there.", "",
             "| check | CPU µs per check | ratio to HMAC |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {cost * 1e6:,.1f} | {_ratio(cost / baseline)} |" for name, cost in costs]
    return lines
