"""Writes the Antom test keys and signature vectors with Antom's official Python SDK.

Run through regenerate.sh beside this file, which installs the pinned SDK into a
throwaway virtual environment first; this file only imports what that
environment holds.

The vectors pin down Antom's signature scheme from the provider's side: the
signatures are made by the SDK's own `signature_tool.sign`, never by our code, so
the Rust adapter's tests (which must reproduce every signature byte for byte)
check our implementation against Antom's. RSA PKCS#1 v1.5 is deterministic, so
the same keys always give the same vectors.json; only `--new-keys` changes it.
"""

import argparse
import hashlib
import importlib.metadata
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rsa import VerificationError

from com.alipay.ams.api.tools import signature_tool, webhook_tool

# RSA-2048, e = 65537: what Antom's dashboard issues.
KEY_BITS = 2048
PUBLIC_EXPONENT = 65537
KEY_VERSION = "1"
CLIENT_ID = "SANDBOX_5Y2J8K1Q0T00ABC"
PARTIES = ("merchant", "antom")

# The cases the adapter's tests name; their content is fixed, only the keys vary.
CASES = [
    {
        "name": "refund-request-epoch-ms",
        "signedWith": "merchant",
        "method": "POST",
        "path": "/ams/api/v1/payments/refund",
        "time": "1767225600123",
        "body": '{"refundRequestId":"R-0001","paymentId":"20240101194010800100188000000001",'
        '"refundAmount":{"currency":"USD","value":"1000"},"refundReason":"customer request"}',
        "note": "Request-Time as epoch milliseconds (Java and Go SDKs)",
    },
    {
        "name": "refund-request-iso-utf8",
        "signedWith": "merchant",
        "method": "POST",
        "path": "/ams/api/v1/payments/refund",
        "time": "2026-01-01T08:00:00+08:00",
        "body": '{"refundRequestId":"R-0002","paymentId":"20240101194010800100188000000002",'
        '"refundAmount":{"currency":"JPY","value":"1500"},"refundReason":"退款: 顧客都合 – size"}',
        "note": "Request-Time as ISO-8601 (Python SDK); body holds non-ASCII UTF-8, signed as bytes",
    },
    {
        "name": "inquiry-sandbox-pretty-json",
        "signedWith": "merchant",
        "method": "POST",
        "path": "/ams/sandbox/api/v1/payments/inquiryRefund",
        "time": "1767225600999",
        "body": '{\n   "refundRequestId": "R-0001"\n}',
        "note": "sandbox client ids sign the /ams/sandbox/api path; body pretty-printed: "
        "the exact bytes sent are signed",
    },
    {
        "name": "refund-response",
        "signedWith": "antom",
        "method": "POST",
        "path": "/ams/api/v1/payments/refund",
        "time": "2026-01-01T08:00:01+08:00",
        "body": '{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"},'
        '"refundRequestId":"R-0001","refundId":"20240101194010800100188000000001R1",'
        '"paymentId":"20240101194010800100188000000001","refundAmount":{"currency":"USD","value":"1000"},'
        '"refundTime":"2026-01-01T08:00:01+08:00"}',
        "note": "response: verify with Antom's public key over METHOD path, clientId, Response-Time header and raw body",
    },
    {
        "name": "notify-refund",
        "signedWith": "antom",
        "method": "POST",
        "path": "/apo/notify/refund",
        "time": "2026-01-01T08:00:05+08:00",
        "body": '{"notifyType":"REFUND_RESULT","result":{"resultCode":"SUCCESS","resultStatus":"S",'
        '"resultMessage":"success"},"refundStatus":"SUCCESS","refundRequestId":"R-0001",'
        '"refundId":"20240101194010800100188000000001R1","refundAmount":{"currency":"USD","value":"1000"},'
        '"refundTime":"2026-01-01T08:00:05+08:00"}',
        "note": "notification to the merchant: the path is the merchant endpoint's path; "
        "Client-Id and Request-Time headers",
    },
]


def private_file(folder, party):
    return folder / f"{party}_private_pkcs8.pem"


def public_file(folder, party):
    return folder / f"{party}_public.pem"


def write_key_pair(folder, party):
    """A fresh RSA key pair: PKCS#8 private key and SubjectPublicKeyInfo public key, both PEM."""
    key = rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=KEY_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    folder.mkdir(parents=True, exist_ok=True)
    private_file(folder, party).write_bytes(private_pem)
    public_file(folder, party).write_bytes(public_pem)


def check_key_pair(folder, party):
    """An existing pair must be RSA-2048 and its public key must belong to its private key."""
    key = serialization.load_pem_private_key(private_file(folder, party).read_bytes(), password=None)
    public = serialization.load_pem_public_key(public_file(folder, party).read_bytes())
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != KEY_BITS:
        sys.exit(f"{private_file(folder, party)}: not an RSA-{KEY_BITS} key")
    if key.public_key().public_numbers() != public.public_numbers():
        sys.exit(f"{public_file(folder, party)} does not belong to {private_file(folder, party)}")


def bare_base64(pem_path):
    """The key as Antom's dashboard hands it out: base64 DER, PEM markers and line breaks removed."""
    lines = pem_path.read_text().splitlines()
    return "".join(line for line in lines if line and not line.startswith("-----"))


def verifies(case, header, public_key):
    """Whether the SDK's own verification accepts `header` for `case` under `public_key`."""
    signature = header.split("signature=", 1)[1]
    try:
        return signature_tool.verify(
            case["method"], case["path"], CLIENT_ID, case["time"], case["body"], signature, public_key
        )
    except VerificationError:  # how the SDK's `rsa` backend reports a mismatch
        return False


def make_case(case, private_keys, public_keys):
    signer = case["signedWith"]
    other = "antom" if signer == "merchant" else "merchant"
    signature = signature_tool.sign(
        case["method"], case["path"], CLIENT_ID, case["time"], case["body"], private_keys[signer]
    )
    header = f"algorithm=RSA256,keyVersion={KEY_VERSION},signature={signature}"
    if not verifies(case, header, public_keys[signer]):
        sys.exit(f"case {case['name']}: the SDK does not verify its own signature")
    if verifies(case, header, public_keys[other]):
        sys.exit(f"case {case['name']}: the {other} key verifies a {signer} signature")
    if signer == "antom" and not webhook_tool.check_signature(
        case["method"], case["path"], CLIENT_ID, case["time"], case["body"], header, public_keys[signer]
    ):
        sys.exit(f"case {case['name']}: webhook_tool.check_signature refuses the header")
    content = signature_tool.gen_sign_content(case["method"], case["path"], CLIENT_ID, case["time"], case["body"])
    return {
        "name": case["name"],
        "signedWith": signer,
        "method": case["method"],
        "path": case["path"],
        "clientId": CLIENT_ID,
        "time": case["time"],
        "body": case["body"],
        "contentToSignSha256": hashlib.sha256(content.encode("utf-8")).hexdigest(),
        "signatureHeader": header,
        "note": case["note"],
    }


def write_vectors(folder):
    for party in PARTIES:
        check_key_pair(folder, party)
    private_keys = {party: bare_base64(private_file(folder, party)) for party in PARTIES}
    public_keys = {party: bare_base64(public_file(folder, party)) for party in PARTIES}
    sdk = importlib.metadata.version("global-open-sdk-python")
    crypto = importlib.metadata.version("cryptography")
    vectors = {
        "generatedWith": f"global-open-sdk-python {sdk} (Antom's official Python SDK, from PyPI; cryptography "
        f"{crypto}): signature_tool.sign, checked with signature_tool.verify and webhook_tool.check_signature",
        "generatedBy": "scripts/antom-vectors/regenerate.sh (see README.md in this folder)",
        "keys": {
            "merchantPrivate": private_file(Path(), "merchant").name,
            "merchantPublic": public_file(Path(), "merchant").name,
            "antomPrivate": private_file(Path(), "antom").name,
            "antomPublic": public_file(Path(), "antom").name,
        },
        "keysNote": "test-only keys made for these vectors; never use them for anything real",
        "cases": [make_case(case, private_keys, public_keys) for case in CASES],
    }
    text = json.dumps(vectors, indent=2, ensure_ascii=False) + "\n"
    (folder / "vectors.json").write_text(text, encoding="utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the keys and vectors.json")
    parser.add_argument("--new-keys", action="store_true", help="replace the test key pairs with new ones")
    parser.add_argument("--demo-keys", type=Path, help="also write new demo key pairs into this folder")
    args = parser.parse_args()
    for party in PARTIES:
        if args.new_keys or not private_file(args.out, party).exists():
            write_key_pair(args.out, party)
            print(f"new {party} key pair in {args.out}")
    write_vectors(args.out)
    print(f"wrote {args.out / 'vectors.json'} ({len(CASES)} cases)")
    if args.demo_keys:
        for party in PARTIES:
            write_key_pair(args.demo_keys, party)
            check_key_pair(args.demo_keys, party)
        print(f"new demo key pairs in {args.demo_keys}")


if __name__ == "__main__":
    main()
