#!/usr/bin/env python3
"""Fetch a running weft site's /openapi.yaml and validate it as OpenAPI 3.0.

    scripts/openapi-check.py [URL] [--user USER:PASS] [--insecure]

URL defaults to http://127.0.0.1:18080/openapi.yaml. Prints "openapi: valid (N paths)" and
exits 0 when the document validates, exits 1 when it cannot be fetched or is invalid, and
exits 77 (skip) when PyYAML or openapi-spec-validator is not installed
(pip install pyyaml openapi-spec-validator).
"""

import argparse
import base64
import ssl
import sys
import urllib.error
import urllib.request

try:
    import yaml
    from openapi_spec_validator import validate
except ImportError as error:
    print(f"openapi: skipped, {error.name or error} is missing (pip install pyyaml openapi-spec-validator)",
          file=sys.stderr)
    sys.exit(77)

DEFAULT_URL = "http://127.0.0.1:18080/openapi.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description="Validate a weft site's OpenAPI document.")
    parser.add_argument("url", nargs="?", default=DEFAULT_URL, help=f"default {DEFAULT_URL}")
    parser.add_argument("--user", metavar="USER:PASS", help="HTTP Basic credentials (restfulApi.auth.basicAuth)")
    parser.add_argument("--insecure", action="store_true", help="do not verify an https:// certificate")
    args = parser.parse_args()

    request = urllib.request.Request(args.url, headers={"Accept": "application/yaml"})
    if args.user:
        if ":" not in args.user:
            print("openapi: --user must be USER:PASS", file=sys.stderr)
            return 2
        token = base64.b64encode(args.user.encode("utf-8")).decode("ascii")
        request.add_header("Authorization", f"Basic {token}")
    context = ssl._create_unverified_context() if args.insecure else None

    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            text = response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        print(f"openapi: GET {args.url}: HTTP {error.code}: {error.read()[:200]!r}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError, UnicodeDecodeError) as error:
        print(f"openapi: GET {args.url}: {error}", file=sys.stderr)
        return 1

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        print(f"openapi: not YAML: {error}", file=sys.stderr)
        return 1
    if not isinstance(document, dict):
        print("openapi: the document is not a YAML mapping", file=sys.stderr)
        return 1
    try:
        validate(document)
    except Exception as error:  # the validator's errors have no common public base class
        # jsonschema's errors carry the schema in their text; the message and the place suffice.
        message = getattr(error, "message", None) or str(error).splitlines()[0]
        place = getattr(error, "json_path", None)
        print(f"openapi: invalid: {message}" + (f" (at {place})" if place else ""), file=sys.stderr)
        return 1
    print(f"openapi: valid ({len(document.get('paths') or {})} paths)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
