"""Tests of strata.py against a running Strata server (unittest, standard library only).

Environment: STRATA_URL, STRATA_KEY, STRATA_CLIENT_DIR (where the strata.py fetched from the
server lies), STRATA_TEST_STREAM (a stream name of its own for this run), STRATA_EXPECT_PANDAS
("1" or "0": whether `import pandas` is meant to work in this run).

    STRATA_URL=… STRATA_KEY=… STRATA_CLIENT_DIR=… /usr/bin/python3 -m unittest test_strata
"""

import http.client
import http.server
import json
import math
import os
import sys
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.environ.get("STRATA_CLIENT_DIR", os.path.dirname(os.path.abspath(__file__))))
import strata  # noqa: E402

URL = os.environ["STRATA_URL"]
KEY = os.environ["STRATA_KEY"]
STREAM = os.environ.get("STRATA_TEST_STREAM", "py")
EXPECT_PANDAS = os.environ.get("STRATA_EXPECT_PANDAS") == "1"

CSV = (
    "time,sample,value,count\n"
    "2024-03-01T00:00:00.000001Z,\"S,1\",1.5,9007199254740993\n"
    "2024-03-01T00:00:01.000000Z,S-2,NaN,-9223372036854775808\n"
    "2024-03-01T00:00:02.123456Z,S-1,0.1,42\n"
    "2024-03-01T00:00:03.000000Z,S-2,-1e-300,7\n"
).encode("utf-8")


class Flaky503(http.server.BaseHTTPRequestHandler):
    """Answers 503 to the first `failures` POSTs, then passes requests on to the server."""

    failures = 3
    seen = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Flaky503.seen.append(self.headers.get("Idempotency-Key"))
        if len(Flaky503.seen) <= Flaky503.failures:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = urllib.parse.urlsplit(URL)
        conn = http.client.HTTPConnection(target.hostname, target.port)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request("POST", self.path, body=body, headers=headers)
        res = conn.getresponse()
        data = res.read()
        self.send_response(res.status)
        self.send_header("Content-Type", res.getheader("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()


class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = strata.Client(URL, KEY, backoff=0.01)
        # Declared types: CSV inference would make integers beyond 2^53 float8.
        definition = {"name": STREAM, "tags": ["sample", "rig"], "fields": [{"name": "value", "type": "float8"}, {"name": "count", "type": "int8"}]}
        cls.client._request("POST", "/v1/streams", lambda: json.dumps(definition).encode(), {"Content-Type": "application/json"})
        cls.first = cls.client.push(CSV, STREAM, tags={"rig": "7"}, provenance={"operator": "ada"}, filename="run.csv")

    def test_pandas_is_there_or_not_as_the_run_says(self):
        try:
            import pandas  # noqa: F401
            have = True
        except ImportError:
            have = False
        self.assertEqual(have, EXPECT_PANDAS)

    def test_push_stores_bytes_once_with_tags_and_provenance(self):
        ingest = self.first["ingest"]
        self.assertFalse(self.first["duplicate"])
        self.assertEqual(ingest["rows"], 4)
        self.assertEqual(ingest["content_type"], "text/csv")
        self.assertEqual(ingest["filename"], "run.csv")
        self.assertEqual(ingest["provenance"], {"operator": "ada"})
        self.assertEqual(ingest["idempotency_key"], strata.idempotency_key(ingest["sha256"], STREAM))
        again = self.client.push(CSV, STREAM, tags={"rig": "7"})
        self.assertTrue(again["duplicate"])
        self.assertEqual(again["ingest"]["id"], ingest["id"])

    def test_push_a_path(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "run2.tsv")
            with open(path, "wb") as f:
                f.write(b"time\tvalue\n2024-03-02T00:00:00Z\t1\n2024-03-02T00:00:01Z\t2\n")
            r = self.client.push(path, STREAM + "-tsv")
        self.assertEqual(r["ingest"]["content_type"], "text/tab-separated-values")
        self.assertEqual(r["ingest"]["filename"], "run2.tsv")
        self.assertEqual(r["ingest"]["rows"], 2)

    def test_push_retries_503_with_one_key_and_stores_once(self):
        Flaky503.seen = []
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky503)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            flaky = strata.Client("http://127.0.0.1:%d" % server.server_address[1], KEY, backoff=0.01)
            body = CSV.replace(b"S-1", b"S-9")
            r = flaky.push(body, STREAM + "-flaky")
        finally:
            server.shutdown()
            server.server_close()
        self.assertFalse(r["duplicate"])
        self.assertEqual(len(Flaky503.seen), 4)
        self.assertEqual(len(set(Flaky503.seen)), 1)
        listing = self.client._get_json("/v1/ingests?stream=%s-flaky&status=committed" % STREAM)
        items = listing.get("ingests", listing.get("items", listing)) if isinstance(listing, dict) else listing
        self.assertEqual(len(items), 1)

    def test_push_gives_up_and_refusals_raise(self):
        with self.assertRaises(strata.StrataError) as cm:
            self.client.push(b"time,value\n2024-03-01T00:00:00Z,1\n", "no such/stream")
        self.assertEqual(cm.exception.status // 100, 4)
        down = strata.Client("http://127.0.0.1:9", KEY, retries=2, backoff=0.01)
        with self.assertRaises(strata.StrataError) as cm:
            down.push(CSV, STREAM)
        self.assertIn("unavailable after 3 attempts", str(cm.exception))

    def test_query_rows_are_exact(self):
        rows = self.client.query(STREAM, start="2024-03-01T00:00:00Z", end="2024-03-02T00:00:00Z", output="rows")
        self.assertEqual(len(rows), 4)
        self.assertEqual(rows[0]["time"].isoformat(), "2024-03-01T00:00:00.000001+00:00")
        self.assertEqual(rows[0]["sample"], "S,1")
        self.assertEqual(rows[0]["count"], 9007199254740993)
        self.assertEqual(rows[1]["count"], -9223372036854775808)
        self.assertTrue(math.isnan(rows[1]["value"]))
        self.assertEqual(rows[2]["value"], 0.1)
        self.assertEqual(rows[3]["value"], -1e-300)
        self.assertEqual(rows[0]["rig"], "7")
        picked = self.client.query(STREAM, fields=["value"], tags={"sample": ["S-2"]}, output="rows")
        self.assertEqual([sorted(r) for r in picked], [["time", "value"]] * 2)

    def test_query_auto_gives_pandas_when_installed(self):
        out = self.client.query(STREAM, start="2024-03-01T00:00:00Z")
        if not EXPECT_PANDAS:
            self.assertIsInstance(out, list)
            return
        import pandas as pd
        self.assertIsInstance(out, pd.DataFrame)
        self.assertEqual(str(out["time"].dtype), "datetime64[ns, UTC]")
        self.assertEqual(str(out["count"].dtype), "int64")
        self.assertEqual(str(out["value"].dtype), "float64")
        self.assertEqual(out["time"][2], pd.Timestamp("2024-03-01T00:00:02.123456Z"))
        self.assertEqual(int(out["count"][0]), 9007199254740993)
        self.assertEqual(int(out["count"][1]), -9223372036854775808)
        self.assertTrue(math.isnan(out["value"][1]))
        self.assertEqual(float(out["value"][2]), 0.1)
        self.assertEqual(out["sample"][0], "S,1")

    def test_trace_names_the_ingest(self):
        t = self.client.trace(STREAM, "2024-03-01T00:00:02.123456Z", sample="S-1")
        self.assertEqual([str(i["id"]) for i in t["ingests"]], [str(self.first["ingest"]["id"])])

    def test_content_types_from_magic_bytes(self):
        self.assertEqual(strata.content_type_of(b"\x89HDF\r\n\x1a\n" + b"\0" * 8, "a.nc"), ("application/x-netcdf", None))
        self.assertEqual(strata.content_type_of(b"\x89HDF\r\n\x1a\n" + b"\0" * 8, "a.h5"), ("application/x-hdf5", None))
        self.assertEqual(strata.content_type_of(b"PAR1xxxx"), ("application/vnd.apache.parquet", None))
        self.assertEqual(strata.content_type_of(b"ARROW1\0\0"), ("application/vnd.apache.arrow.file", None))
        self.assertEqual(strata.content_type_of(b"\xff\xff\xff\xff\x10\0\0\0"), ("application/vnd.apache.arrow.stream", None))
        self.assertIsNone(strata.content_type_of(b"\0\1\2"))


if __name__ == "__main__":
    unittest.main()
