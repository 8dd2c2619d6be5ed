"""What a check-in costs after the decoder: parse + verify + decide, per payload kind.

Run: .venv/bin/python bench/verify_credentials.py   (a few seconds; prints, no asserts)

Each kind goes through `Judge.judge` (parse, signature checks against a trust store loaded
beforehand, policy) as the capture loop calls it, beside the decode time of one 640x480
frame. The goal (issue 4): verification never adds more than one frame interval to a
check-in on a Pi 4 class CPU. There is no Pi here, so the Pi 4 figure is an estimate:
this machine's time multiplied by 4 to 6 (a Cortex-A72 at 1.5-1.8 GHz against a current
x86_64 core, single-threaded, for both Python code and OpenSSL's signature checks); the
printout says so and shows the range.
"""

import datetime
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import cryptography  # noqa: E402
from credentialgen import (  # noqa: E402 - needs the path set above
    PS256,
    bhyt,
    certificate,
    cose,
    ec_key,
    ed_key,
    hc1,
    kid_of,
    rsa_key,
    vaccination,
    vds_seal,
    vds_vaccination,
)
from cryptography.hazmat.backends import openssl  # noqa: E402
from imagegen import empty_frame, qr_frame  # noqa: E402

from gate.camera.config import CameraConfig  # noqa: E402
from gate.config.site import SiteConfig  # noqa: E402
from gate.credentials import Parser  # noqa: E402
from gate.decode import DecoderConfig, make_decoder  # noqa: E402
from gate.judge import Judge  # noqa: E402
from gate.policy import PolicyConfig, Rules  # noqa: E402
from gate.trust import passes  # noqa: E402
from gate.trust.store import (  # noqa: E402
    TrustStore,
    pass_key_from_public_key,
    signer_from_certificate,
)

UTC = datetime.UTC
AT = datetime.datetime(2025, 6, 1, 10, tzinfo=UTC)
PI4_FACTORS = (4, 6)
ROUNDS = 2000


def payloads() -> tuple[dict[str, str], TrustStore]:
    """One payload per kind (and the signed kinds' failure paths), and the trust they need."""
    ec_cert = certificate(ec_key(50), subject="Bench ES256")
    rsa_cert = certificate(rsa_key(50), subject="Bench PS256")
    csca = certificate(ec_key(51), subject="Bench CSCA", ca=True)
    seal_cert = certificate(ec_key(52), subject="Bench VDS", issuer=(csca.subject, ec_key(51)))
    trust = TrustStore.of(
        [signer_from_certificate(c, "bench") for c in (ec_cert, rsa_cert, csca)],
        [pass_key_from_public_key(ed_key(50).public_key(), "bench")],
    )
    sample = (ROOT / "tests" / "data" / "dcc-vn-test-sample.txt").read_text().strip()
    gate_pass = passes.issue(
        ed_key(50),
        pass_id="bench-1",
        holder="Khách mời",
        not_before=datetime.datetime(2025, 1, 1, tzinfo=UTC),
        not_after=datetime.datetime(2026, 1, 1, tzinfo=UTC),
        venue="demo-venue",
    )
    return {
        "cccd": "001090123456|012345678|Nguyễn Văn An|01011990|Nam|Phường Bến Nghé, Quận 1, "
        "TP. Hồ Chí Minh|15042021",
        "national_qr": "******029317|NGUYEN LE KHA HAN|1987-01-18|0|162979388586171100|"
        "1<GD4877*******<0943******",
        "bhyt": bhyt(),
        "eu_dcc ES256 verified": hc1(cose(vaccination(), ec_key(50), kid=kid_of(ec_cert))),
        "eu_dcc PS256 verified": hc1(
            cose(vaccination(), rsa_key(50), kid=kid_of(rsa_cert), algorithm=PS256)
        ),
        "eu_dcc ES256 tampered": hc1(
            cose(vaccination(), ec_key(50), kid=kid_of(ec_cert), tamper=True)
        ),
        "eu_dcc VN sample (signer unknown)": sample,
        "vds_nc ES256 + chain": vds_seal(vds_vaccination(), ec_key(52), seal_cert),
        "gate_pass Ed25519": gate_pass,
        "payment (refused)": "00020101021238570010A000000727012700069704220113012345678901020208"
        "QRIBFTTA53037045802VN6304ABCD",
    }, trust


def percentiles_us(call: Callable[[], object], rounds: int) -> tuple[float, float]:
    for _ in range(50):
        call()
    times = np.empty(rounds)
    for i in range(rounds):
        start = time.perf_counter_ns()
        call()
        times[i] = time.perf_counter_ns() - start
    return float(np.percentile(times, 50)) / 1e3, float(np.percentile(times, 99)) / 1e3


def main() -> None:
    print(
        f"{platform.machine()} {platform.processor() or ''} Python {platform.python_version()}, "
        f"cryptography {cryptography.__version__} ({openssl.backend.openssl_version_text()})"
    )
    texts, trust = payloads()
    signed_and_plain = ["cccd", "national_qr", "bhyt", "eu_dcc", "vds_nc", "gate_pass"]
    policy = PolicyConfig(accept_kinds=signed_and_plain)
    judge = Judge(Rules(policy, SiteConfig(venue_id="demo-venue")), Parser(trust=trust))

    print(f"\nparse + verify + decide (Judge.judge), {ROUNDS} calls each")
    print(f"{'payload':36s} {'bytes':>5s} {'p50 us':>8s} {'p99 us':>8s}  outcome")
    worst_p99 = 0.0
    for label, text in texts.items():
        payload = text.encode()
        credential, decision = judge.judge(payload, AT)
        p50, p99 = percentiles_us(lambda payload=payload: judge.judge(payload, AT), ROUNDS)
        worst_p99 = max(worst_p99, p99)
        outcome = "accepted" if decision.accepted else f"refused {decision.reason}"
        verified = " verified" if credential.verified else ""
        print(f"{label:36s} {len(payload):5d} {p50:8.1f} {p99:8.1f}  {outcome}{verified}")

    decoder = make_decoder(DecoderConfig())
    with_code = qr_frame(texts["eu_dcc ES256 verified"], module_px=3, blur=0.6, noise=3.0)
    empty = empty_frame()
    code_p50, code_p99 = percentiles_us(lambda: decoder.decode(with_code), 200)
    empty_p50, _ = percentiles_us(lambda: decoder.decode(empty), 200)
    fps = CameraConfig().fps
    interval_us = 1e6 / fps
    print(
        f"\none 640x480 frame, decoder {decoder.name}: with the HC1 code p50 {code_p50:.0f} us "
        f"(p99 {code_p99:.0f}), empty p50 {empty_p50:.0f} us"
    )
    print(f"frame interval at the default {fps:g} fps: {interval_us:.0f} us")

    low, high = PI4_FACTORS
    print(
        f"\nPi 4 estimate (not measured: this machine's figure x{low}-{high}): worst p99 above "
        f"{worst_p99:.0f} us -> {worst_p99 * low / 1e3:.1f}-{worst_p99 * high / 1e3:.1f} ms, "
        f"{worst_p99 * high / interval_us:.0%} of one frame interval at most"
    )


if __name__ == "__main__":
    main()
