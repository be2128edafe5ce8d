#!/usr/bin/env python3
"""Signs requests with Microsoft's own ACS SDK, as the oracle for the Swift signer's tests.

Reads a JSON list of cases on standard input, each
  {"method": "POST", "url": "https://host/path?query", "body": "text" or null,
   "key": "<base64 access key>", "date": "Tue, 25 Jan 2022 17:34:52 GMT", "endpoint": "https://host"}
and writes a JSON list of the headers the SDK's HMACCredentialsPolicy set on each request.

The policy reads the clock itself (utils.get_current_utc_time, imported into the policy's
module), so the script replaces that function with one returning the case's date: everything
else is the SDK's code as shipped (azure-communication-callautomation from PyPI).
"""

import json
import sys

from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import HttpRequest

from azure.communication.callautomation._shared import policy as acs_policy


def sign(case):
    acs_policy.get_current_utc_time = lambda: case["date"]
    signer = acs_policy.HMACCredentialsPolicy(case["endpoint"], case["key"])
    request = HttpRequest(case["method"], case["url"])
    if case.get("body") is not None:
        request.body = case["body"]
    signer.on_request(PipelineRequest(request, PipelineContext(None)))
    wanted = ("x-ms-date", "x-ms-content-sha256", "x-ms-return-client-request-id", "Authorization")
    return {name: request.headers[name] for name in wanted}


def main():
    cases = json.load(sys.stdin)
    json.dump([sign(case) for case in cases], sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
