"""Strata client: one file, Python 3.8+, standard library only.

Fetch it from the server itself:

    python3 -c "import urllib.request as u; u.urlretrieve('http://strata.lab:8080/client/strata.py', 'strata.py')"

Then:

    from strata import Client
    c = Client("http://strata.lab:8080", key)
    c.push("run-0042.h5", "rig-7", tags={"rig": "7"}, provenance={"operator": "ada"})
    df = c.query("rig-7", start="2024-03-01T00:00:00Z", end="2024-03-02T00:00:00Z")
    c.trace("rig-7", "2024-03-01T12:00:00.000000Z", sample="S-1")

push() retries network errors, 5xx and 429 with exponential backoff and jitter, each time with
the same Idempotency-Key (from the file's SHA-256 and the stream, as `strata push` makes it), so
a retry never stores a file twice. query() returns a pandas DataFrame when pandas is installed
(read through Arrow when pyarrow is installed, else from CSV with the column types restored), or
else a list of dicts.
"""

import csv
import datetime as _dt
import hashlib
import http.client
import io
import json
import math
import os
import random
import time
import urllib.parse

__all__ = ["Client", "StrataError", "idempotency_key", "content_type_of"]
__version__ = "1"

_CHUNK = 1 << 20
_UTC = _dt.timezone.utc


class StrataError(Exception):
    """The server refused a request (4xx), or stayed unavailable after every retry."""

    def __init__(self, message, status=None, code=None, body=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body


class _Retryable(Exception):
    def __init__(self, reason, retry_after=None):
        super().__init__(reason)
        self.retry_after = retry_after


def idempotency_key(sha256_hex, stream):
    """The Idempotency-Key of a file in a stream (the same as `strata push` sends)."""
    key = "sha256:%s:stream:%s" % (sha256_hex, stream)
    if len(key) <= 256:
        return key
    return "sha256:%s:stream-sha256:%s" % (sha256_hex, hashlib.sha256(stream.encode("utf-8")).hexdigest())


def content_type_of(head, name=""):
    """(content type, content encoding) of a file from its first bytes; None if not a format Strata reads."""
    lower = (name or "").lower()
    if head[:2] == b"\x1f\x8b":
        import zlib
        try:
            inner = zlib.decompressobj(31).decompress(head)
        except zlib.error:
            return None
        t = content_type_of(inner, lower[:-3] if lower.endswith(".gz") else lower)
        return (t[0], "gzip") if t else None
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        netcdf = lower.endswith((".nc", ".nc4", ".netcdf", ".cdf"))
        return ("application/x-netcdf" if netcdf else "application/x-hdf5", None)
    if head[:4] == b"PAR1":
        return ("application/vnd.apache.parquet", None)
    if head[:6] == b"ARROW1":
        return ("application/vnd.apache.arrow.file", None)
    if head[:4] == b"\xff\xff\xff\xff":
        return ("application/vnd.apache.arrow.stream", None)
    if head and b"\0" not in head:
        first = head.split(b"\n", 1)[0]
        tsv = lower.endswith((".tsv", ".tab")) or (b"\t" in first and b"," not in first)
        return ("text/tab-separated-values" if tsv else "text/csv", None)
    return None


def _instant(value):
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise ValueError("a datetime without a time zone is ambiguous; give tzinfo (e.g. datetime.timezone.utc)")
        return value.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def _parse_time(text):
    # RFC 3339 UTC with six fractional digits, as Strata writes it.
    if text is None or text == "":
        return None
    return _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_UTC)


_PANDAS_INTS = {"int2": "Int16", "int4": "Int32", "int8": "Int64"}
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class Client:
    """A Strata server at `url` (e.g. http://strata.lab:8080) with API key `key`."""

    def __init__(self, url, key, timeout=300.0, retries=8, backoff=0.5, max_backoff=30.0):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("url must be http://host[:port] or https://…, got %r" % (url,))
        self.url = url.rstrip("/")
        self.key = key
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._parsed = parsed

    # ---- HTTP ----------------------------------------------------------------------------

    def _connection(self):
        cls = http.client.HTTPSConnection if self._parsed.scheme == "https" else http.client.HTTPConnection
        return cls(self._parsed.hostname, self._parsed.port, timeout=self.timeout)

    def _once(self, method, path, body=None, headers=None, stream=False):
        conn = self._connection()
        h = {"Authorization": "Bearer " + self.key, "User-Agent": "strata.py/" + __version__}
        h.update(headers or {})
        try:
            conn.request(method, self._parsed.path.rstrip("/") + path, body=body, headers=h)
            res = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise _Retryable("%s: %s" % (type(e).__name__, e))
        if res.status == 200 or res.status == 201:
            if stream:
                return res, conn
            data = res.read()
            conn.close()
            return res, data
        data = res.read()
        conn.close()
        try:
            problem = json.loads(data.decode("utf-8"))
        except ValueError:
            problem = {}
        code = problem.get("code") if isinstance(problem, dict) else None
        detail = (problem.get("detail") or problem.get("title")) if isinstance(problem, dict) else None
        reason = "%d %s: %s" % (res.status, code or "", detail or data[:200].decode("utf-8", "replace"))
        if res.status >= 500 or res.status in (408, 429):
            retry_after = res.getheader("Retry-After")
            try:
                retry_after = float(retry_after) if retry_after is not None else None
            except ValueError:
                retry_after = None
            raise _Retryable(reason, retry_after)
        raise StrataError(reason, res.status, code, problem)

    def _request(self, method, path, body_factory=None, headers=None, stream=False):
        """One request with the retry rules; body_factory() gives a fresh body for each attempt."""
        attempt = 0
        while True:
            attempt += 1
            body = body_factory() if body_factory else None
            try:
                return self._once(method, path, body, headers, stream)
            except _Retryable as e:
                if attempt > self.retries:
                    raise StrataError("server unavailable after %d attempts: %s" % (attempt, e))
                cap = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                time.sleep(min(self.max_backoff, max(random.uniform(0, cap), e.retry_after or 0)))
            finally:
                if hasattr(body, "close"):
                    body.close()

    def _get_json(self, path):
        _, data = self._request("GET", path)
        return json.loads(data.decode("utf-8"))

    # ---- push ----------------------------------------------------------------------------

    def push(self, path_or_bytes, stream, tags=None, provenance=None, content_type=None, filename=None):
        """Uploads a file (a path, or the bytes of one) to `stream`.

        Returns the server's answer: {"ingest": {...}, "duplicate": bool} (duplicate when the
        server already held these bytes, e.g. from an earlier attempt whose answer was lost).
        """
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            data = bytes(path_or_bytes)
            size = len(data)
            sha = hashlib.sha256(data).hexdigest()
            head = data[:65536]
            name = filename
            factory = lambda: data  # noqa: E731
        else:
            file_path = os.fspath(path_or_bytes)
            size = os.path.getsize(file_path)
            digest = hashlib.sha256()
            with open(file_path, "rb") as f:
                head = f.read(65536)
                digest.update(head)
                for chunk in iter(lambda: f.read(_CHUNK), b""):
                    digest.update(chunk)
            sha = digest.hexdigest()
            name = filename or os.path.basename(file_path)
            factory = lambda: open(file_path, "rb")  # noqa: E731
        encoding = None
        if content_type is None:
            detected = content_type_of(head, name or "")
            if detected is None:
                raise StrataError("not a format Strata reads (HDF5, netCDF4, Parquet, Arrow, CSV, TSV); give content_type= to send it anyway")
            content_type, encoding = detected
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(size),
            "Idempotency-Key": idempotency_key(sha, stream),
        }
        if encoding:
            headers["Content-Encoding"] = encoding
        if name:
            ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
            headers["Content-Disposition"] = "attachment; filename=\"%s\"; filename*=UTF-8''%s" % (ascii_name, urllib.parse.quote(name))
        if provenance is not None:
            headers["Strata-Provenance"] = provenance if isinstance(provenance, str) else json.dumps(provenance, separators=(",", ":"))
        query = urllib.parse.urlencode([("tag." + k, v) for k, v in (tags or {}).items()])
        path = "/v1/streams/%s/ingest%s" % (urllib.parse.quote(stream, safe=""), "?" + query if query else "")
        _, body = self._request("POST", path, factory, headers)
        return json.loads(body.decode("utf-8"))

    # ---- query ---------------------------------------------------------------------------

    def query(self, stream, start=None, end=None, resolution=None, fields=None, tags=None, limit=None, output="auto", **kw):
        """Rows of `stream` from `start` (inclusive) to `end` (exclusive).

        start/end: RFC 3339 text with a zone, or timezone-aware datetimes (also accepted as
        from_=/to=). fields: a list of column names. tags: {name: value or [values]}.
        output: "auto" (a pandas DataFrame when pandas is installed, else rows), "pandas", "rows"
        (a list of dicts: times as aware datetimes, NaN and infinities as floats).
        """
        start = kw.pop("from_", start)
        end = kw.pop("to", end)
        if kw:
            raise TypeError("unknown argument(s): %s" % ", ".join(sorted(kw)))
        if output not in ("auto", "pandas", "rows"):
            raise ValueError("output must be 'auto', 'pandas' or 'rows', got %r" % (output,))
        params = []
        for name, value in (("from", _instant(start)), ("to", _instant(end)), ("resolution", resolution), ("limit", limit)):
            if value is not None:
                params.append((name, str(value)))
        if fields:
            params.append(("fields", ",".join(fields) if not isinstance(fields, str) else fields))
        for k, v in (tags or {}).items():
            for one in ([v] if isinstance(v, str) else v):
                params.append(("tag." + k, one))
        pd = None
        if output != "rows":
            try:
                import pandas as pd  # noqa: F811
            except ImportError:
                if output == "pandas":
                    raise
                pd = None
        base = "/v1/streams/%s/query?" % urllib.parse.quote(stream, safe="")
        if pd is None:
            doc = self._get_json(base + urllib.parse.urlencode(params + [("format", "json")]))
            return _rows_from_json(doc)
        try:
            import pyarrow.ipc as ipc
        except ImportError:
            ipc = None
        if ipc is not None:
            res, conn = self._request("GET", base + urllib.parse.urlencode(params + [("format", "arrow")]), stream=True)
            try:
                return ipc.open_stream(res).read_all().to_pandas()
            finally:
                conn.close()
        return self._pandas_from_csv(pd, stream, base, params, resolution)

    def _pandas_from_csv(self, pd, stream, base, params, resolution):
        res, conn = self._request("GET", base + urllib.parse.urlencode(params + [("format", "csv")]), stream=True)
        try:
            text = io.TextIOWrapper(res, encoding="utf-8", newline="")
            header = next(csv.reader([text.readline()]))
            rest = text.read()
        finally:
            conn.close()
        types = {}
        if resolution in (None, "raw"):
            doc = self._get_json("/v1/streams/%s" % urllib.parse.quote(stream, safe=""))
            types = {c["name"]: c["type"] for c in doc.get("tags", []) + doc.get("fields", [])}
        dtype = {}
        for name in header:
            t = types.get(name)
            if t == "text" or t == "timestamptz" or name == "time":
                dtype[name] = "string"
            elif t in _PANDAS_INTS:
                dtype[name] = _PANDAS_INTS[t]
            elif t == "bool":
                dtype[name] = "boolean"
            elif t in ("float8", "float4"):
                dtype[name] = "float64"
        # Empty cells are nulls (text included, where "NaN" is text); in pandas a null float and NaN are both NaN.
        na = {n: [""] if dtype.get(n) == "string" else ["", "NaN"] for n in header}
        frame = pd.read_csv(io.StringIO(",".join(_csv_quote(h) for h in header) + "\n" + rest), dtype=dtype or None,
                            keep_default_na=False, na_values=na, float_precision="round_trip")
        for name in header:
            t = types.get(name)
            if name == "time" or t == "timestamptz":
                frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601" if int(pd.__version__.split(".")[0]) >= 2 else None)
            elif t in _PANDAS_INTS and not frame[name].isna().any():
                frame[name] = frame[name].astype(_PANDAS_INTS[t].lower())
            elif t == "float4":
                frame[name] = frame[name].astype("float32")
            elif t == "bool" and not frame[name].isna().any():
                frame[name] = frame[name].astype("bool")
        return frame

    # ---- trace ---------------------------------------------------------------------------

    def trace(self, stream, time, resolution=None, **tags):
        """Which ingests hold the reading of `stream` at `time` (tags single out one series)."""
        params = [("time", _instant(time))]
        if resolution:
            params.append(("resolution", resolution))
        params += [("tag." + k, str(v)) for k, v in tags.items()]
        return self._get_json("/v1/streams/%s/provenance?%s" % (urllib.parse.quote(stream, safe=""), urllib.parse.urlencode(params)))


def _csv_quote(s):
    return '"%s"' % s.replace('"', '""') if any(c in s for c in ',"\r\n') or s == "" else s


def _rows_from_json(doc):
    columns = doc["columns"]
    convert = []
    for c in columns:
        t = c["type"]
        if t == "timestamptz":
            convert.append(_parse_time)
        elif t in ("float8", "float4"):
            convert.append(lambda v: _NON_FINITE.get(v, v) if isinstance(v, str) else v)
        else:
            convert.append(None)
    names = [c["name"] for c in columns]
    out = []
    for row in doc["rows"]:
        out.append({n: (f(v) if f and v is not None else v) for n, f, v in zip(names, convert, row)})
    return out
