"""datasets.<name>.kaggle against a stub of the Kaggle API on the loopback interface, never the internet.

kagglehub (through kagglesdk) takes its endpoint from ``KAGGLE_API_ENVIRONMENT``: ``TEST`` is
``http://localhost:7777``, where the stub below listens (127.0.0.1). It answers the two calls a
dataset download makes, GetDataset (the current version) and DownloadDataset (the archive), checks
the Basic credentials, and can answer 401 / 403 / 404, cut the body short, or stall part-way.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

from conftest import write_image
from leukobench.data.download import DOWNLOAD_NAME, DownloadError
from leukobench.data import kaggle
from leukobench.data.kaggle import (KaggleCredentialError, KaggleNotFoundError, current_versions, fetch_due, fetch_kaggle, handle_of, tree_digest, version_param)
from leukobench.plan.config import config_problems, reader_format
from forked_snakemake import run_snakemake
from test_workflow import REPO, SMOKE_SCALE, SNAKEFILE, SNAKEMAKE

STUB_ADDRESS = ("127.0.0.1", 7777)  # kagglesdk's TEST environment: http://localhost:7777
USER, KEY = "lab-user", "s3cret-kaggle-key-0123456789"
OWNER, SLUG = "mehradaria", "leukemia"
CURRENT_VERSION = 3
WAIT_S = 60.0  # the longest any test waits for the stub or a process
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
ARIA_NAMES = {"Benign": "WBC-Benign-{:03d}.jpg", "Early": "WBC-Malignant-Early-{:03d}.jpg",
              "Pre": "WBC-Malignant-Pre-{:03d}.jpg", "Pro": "WBC-Malignant-Pro-{:03d}.jpg"}


def aria_zip(tmp: Path, per_class: int = 2) -> bytes:
    """A small zip in the layout of Kaggle's mehradaria/leukemia: Original/ and Segmented/, 4 classes."""
    tree = tmp / "aria_tree"
    seed = 0
    for images in ("Original", "Segmented"):
        for cls, pattern in ARIA_NAMES.items():
            for n in range(1, per_class + 1):
                seed += 1
                write_image(tree / images / cls / pattern.format(n), seed=seed, size=24)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(tree).as_posix())
    shutil.rmtree(tree)
    return buffer.getvalue()


class KaggleStub(http.server.ThreadingHTTPServer):
    """Kaggle's API as kagglesdk calls it: POST /api/v1/datasets.DatasetApiService/<call> with a JSON body."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, archive: bytes):
        self.archive, self.mode, self.versions = archive, "ok", {CURRENT_VERSION - 1, CURRENT_VERSION}
        self.calls: list[tuple[str, dict]] = []
        self.stalled, self.release = threading.Event(), threading.Event()
        super().__init__(STUB_ADDRESS, StubHandler)


class StubHandler(http.server.BaseHTTPRequestHandler):
    server: KaggleStub

    def log_message(self, *args):  # quiet
        pass

    def reply(self, status: int, body: bytes, content_type: str = "application/json", length: int | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status: int, message: str):
        self.reply(status, json.dumps({"code": status, "message": message}).encode())

    def do_POST(self):
        stub = self.server
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        call = self.path.rsplit("/", 1)[-1]
        stub.calls.append((call, body))
        if stub.mode == "silent":  # the connection held open, no answer
            stub.stalled.set()
            stub.release.wait(WAIT_S)
            return
        expected = "Basic " + base64.b64encode(f"{USER}:{KEY}".encode()).decode()
        if stub.mode == "forbidden":
            return self.error(403, "Permission denied")
        if self.headers.get("Authorization") != expected:
            return self.error(401, "Unauthenticated")
        if (body.get("ownerSlug"), body.get("datasetSlug")) != (OWNER, SLUG):
            return self.error(404, "Not found")
        if call == "GetDataset":
            return self.reply(200, json.dumps({"currentVersionNumber": CURRENT_VERSION}).encode())
        if call != "DownloadDataset" or body.get("datasetVersionNumber") not in stub.versions:
            return self.error(404, "Not found")
        archive = stub.archive
        if stub.mode in ("truncated", "stall"):
            self.reply(200, archive[: len(archive) // 2], "application/zip", length=len(archive))
            self.wfile.flush()
            if stub.mode == "stall":
                stub.stalled.set()
                stub.release.wait(WAIT_S)
            return  # the connection closes short of the length announced
        md5 = base64.b64encode(hashlib.md5(archive).digest()).decode()
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(archive)))
        self.send_header("X-Goog-Hash", f"crc32c=AAAAAA==,md5={md5}")  # what Kaggle's storage sends; kagglehub checks it
        self.end_headers()
        self.wfile.write(archive)


@pytest.fixture
def kaggle_env(tmp_path, monkeypatch) -> dict:
    """The environment of a user with Kaggle credentials in KAGGLE_USERNAME / KAGGLE_KEY and the
    endpoint of kagglesdk's TEST environment; no proxy, no kaggle.json or token of this machine."""
    home = tmp_path / "home"
    home.mkdir()
    for name in (*PROXY_VARIABLES, "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    values = {"KAGGLE_API_ENVIRONMENT": "TEST", "KAGGLE_USERNAME": USER, "KAGGLE_KEY": KEY, "HOME": str(home),
              "KAGGLE_CONFIG_DIR": str(home / ".kaggle"), "NO_PROXY": "localhost,127.0.0.1"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def stub(tmp_path):
    server = KaggleStub(aria_zip(tmp_path))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(WAIT_S)


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def archive_tree(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        return {name: zf.read(name) for name in sorted(zf.namelist()) if not name.endswith("/")}


# --------------------------------------------------------------------------- the fetch itself


def test_latest_is_asked_for_then_fetched_unpacked_and_receipted(stub, kaggle_env, tmp_path, capfd):
    dest, receipt = tmp_path / "files", tmp_path / "receipt.json"
    content = fetch_kaggle(f"{OWNER}/{SLUG}", dest, receipt, names=["aria"])
    assert [call for call, _ in stub.calls] == ["GetDataset", "DownloadDataset"]
    assert stub.calls[1][1]["datasetVersionNumber"] == CURRENT_VERSION
    assert read_tree(dest) == archive_tree(stub.archive)  # unpacked as it is, the archive itself removed
    written = json.loads(receipt.read_text())
    assert written == content
    assert (written["dataset"], written["requested"], written["version"]) == (f"{OWNER}/{SLUG}", "latest", CURRENT_VERSION)
    assert (written["files"], written["sha256"]) == (16, tree_digest(dest)[2])
    # the credentials are nowhere: not in the receipt, not in what the fetch printed
    output = capfd.readouterr()
    encoded = base64.b64encode(f"{USER}:{KEY}".encode()).decode()
    for text in (receipt.read_text(), output.out, output.err):
        assert KEY not in text and encoded not in text and USER not in text


def test_a_pinned_version_is_fetched_without_asking_for_the_current_one(stub, kaggle_env, tmp_path):
    content = fetch_kaggle(f"{OWNER}/{SLUG}/versions/2", tmp_path / "files", tmp_path / "receipt.json")
    assert [(call, body.get("datasetVersionNumber")) for call, body in stub.calls] == [("DownloadDataset", 2)]
    assert (content["requested"], content["version"]) == ("2", 2)


def test_kaggles_current_version_is_said_beside_the_one_fetched(stub, kaggle_env, tmp_path):
    handle = f"{OWNER}/{SLUG}/versions/{CURRENT_VERSION - 1}"
    folder = tmp_path / "resources" / "kaggle" / OWNER / SLUG
    (before,) = current_versions([handle], tmp_path)
    assert before == f"{OWNER}/{SLUG}: not fetched yet; Kaggle's current version is {CURRENT_VERSION}"
    fetch_kaggle(handle, folder / "files", folder / "receipt.json")
    (moved,) = current_versions([handle], tmp_path)
    assert f"version {CURRENT_VERSION - 1} fetched, Kaggle's current one is {CURRENT_VERSION}" in moved
    assert f"kaggle: {OWNER}/{SLUG}/versions/{CURRENT_VERSION}" in moved
    assert [call for call, _ in stub.calls] == ["GetDataset", "DownloadDataset", "GetDataset"]


def test_only_another_version_changes_the_fetch_param(stub, kaggle_env, tmp_path):
    """latest is the version of the first fetch, kept; a pin of it is the same; another pin is not."""
    folder = tmp_path / "resources" / "kaggle" / OWNER / SLUG
    latest, pinned, other = (f"{OWNER}/{SLUG}", f"{OWNER}/{SLUG}/versions/{CURRENT_VERSION}",
                             f"{OWNER}/{SLUG}/versions/{CURRENT_VERSION - 1}")
    assert [version_param(h, tmp_path) for h in (latest, pinned, other)] == ["latest", str(CURRENT_VERSION), "2"]
    assert all(fetch_due(h, tmp_path) for h in (latest, pinned, other))
    fetch_kaggle(latest, folder / "files", folder / "receipt.json")
    assert [version_param(h, tmp_path) for h in (latest, pinned, other)] == ["latest", "latest", "2"]
    assert [fetch_due(h, tmp_path) for h in (latest, pinned, other)] == [False, False, True]
    shutil.rmtree(folder / "files")  # the tree deleted: fetched again (credentials checked at start)
    assert fetch_due(latest, tmp_path) and version_param(latest, tmp_path) == "latest"
    assert handle_of(OWNER, SLUG, "latest") == latest and handle_of(OWNER, SLUG, "2") == other


def test_the_receipts_digest_changes_with_any_file_and_only_with_the_files(stub, kaggle_env, tmp_path):
    dest, receipt = tmp_path / "files", tmp_path / "receipt.json"
    fetch_kaggle(f"{OWNER}/{SLUG}", dest, receipt)
    digest = json.loads(receipt.read_text())["sha256"]
    (dest / ".snakemake_timestamp").touch()  # Snakemake's marker in a directory() output
    os.utime(next(dest.rglob("*.jpg")), (0, 0))
    assert tree_digest(dest)[2] == digest
    image = next(dest.rglob("*.jpg"))
    image.write_bytes(image.read_bytes()[:-1] + b"x")  # same size, other bytes
    assert tree_digest(dest)[2] != digest


@pytest.mark.parametrize("credentials", ["wrong", "missing", "refused"])
def test_missing_wrong_or_refused_credentials_name_the_dataset_and_the_ways(stub, kaggle_env, tmp_path, monkeypatch,
                                                                           credentials):
    if credentials == "wrong":
        monkeypatch.setenv("KAGGLE_KEY", "not-the-key")
    elif credentials == "missing":
        monkeypatch.delenv("KAGGLE_USERNAME")
        monkeypatch.delenv("KAGGLE_KEY")
    else:
        stub.mode = "forbidden"  # e.g. a dataset whose terms the account has not accepted
    with pytest.raises(KaggleCredentialError) as error:
        fetch_kaggle(f"{OWNER}/{SLUG}/versions/3", tmp_path / "files", tmp_path / "receipt.json", names=["aria"])
    message = str(error.value)
    assert f"{OWNER}/{SLUG}" in message and "datasets.aria" in message
    assert "KAGGLE_USERNAME" in message and "kaggle.json" in message
    assert {"wrong": "HTTP 401", "missing": "no Kaggle credentials", "refused": "HTTP 403"}[credentials] in message
    assert KEY not in message and "not-the-key" not in message
    assert stub.calls == [] if credentials == "missing" else len(stub.calls) == 1  # missing: nothing is asked
    assert not (tmp_path / "receipt.json").exists()


@pytest.mark.parametrize("handle", [f"{OWNER}/no-such-dataset", f"{OWNER}/{SLUG}/versions/9"])
def test_an_unknown_dataset_or_version_is_a_404_naming_it(stub, kaggle_env, tmp_path, handle):
    with pytest.raises(KaggleNotFoundError, match="HTTP 404") as error:
        fetch_kaggle(handle, tmp_path / "files", tmp_path / "receipt.json")
    assert handle.split("/versions/")[0] in str(error.value)
    assert not (tmp_path / "receipt.json").exists()


def test_a_truncated_body_fails_and_leaves_no_receipt(stub, kaggle_env, tmp_path):
    stub.mode = "truncated"
    with pytest.raises(DownloadError, match=f"{OWNER}/{SLUG}"):
        fetch_kaggle(f"{OWNER}/{SLUG}/versions/3", tmp_path / "files", tmp_path / "receipt.json")
    assert not (tmp_path / "receipt.json").exists()
    assert not [p for p in (tmp_path / "files").rglob("*.jpg")]  # nothing unpacked from half an archive


@pytest.mark.parametrize("mode, handle", [("stall", f"{OWNER}/{SLUG}/versions/3"),  # half the archive, then nothing
                                          ("silent", f"{OWNER}/{SLUG}")])  # no answer to the version asked for
def test_a_connection_that_stalls_fails_in_seconds_naming_the_dataset(stub, kaggle_env, tmp_path, monkeypatch, mode,
                                                                      handle):
    """kagglesdk sends without a timeout: a stalled fetch (or version check) would wait forever, and the workflow with it."""
    monkeypatch.setattr(kaggle, "KAGGLE_TIMEOUT_S", (5.0, 0.5))
    stub.mode = mode
    started = time.monotonic()
    with pytest.raises(DownloadError, match=f"{OWNER}/{SLUG}.*check the network and run again"):
        fetch_kaggle(handle, tmp_path / "files", tmp_path / "receipt.json")
    assert stub.stalled.is_set() and time.monotonic() - started < WAIT_S / 2  # the stub holds it WAIT_S
    assert not (tmp_path / "receipt.json").exists()
    if mode == "silent":
        with pytest.raises(DownloadError, match=f"{OWNER}/{SLUG}: Kaggle did not answer.*check the network"):
            current_versions([handle], base=tmp_path)


# --------------------------------------------------------------------------- the workflow


def aria_config(handle: str) -> dict:
    """The smallest config reading the Kaggle dataset twice (Original/ and Segmented/), one fetch for both."""
    source = {"format": "aria", "kaggle": handle}
    return {
        "datasets": {"original": {**source, "options": {"images": "original"}},
                     "segmented": {**source, "options": {"images": "segmented"}}},
        "split": {"method": "random", "ratios": {"train": 0.5, "val": 0.25, "test": 0.25}, "seed": 0},
        "variants": {"plain": {"balance": "none"}},
        "grid": {"dataset": ["original", "segmented"], "variant": ["plain"], "size": [32], "model": ["abed_cnn"],
                 "epochs": [1]},
        "hybrid": {"models": [], "classifiers": []},
    }


def snakemake(workdir: Path, config: dict, *args: str, env: dict) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return run_snakemake([*SNAKEFILE, "--directory", workdir, "--configfile", workdir / "config.yaml", "--cores", "1", *args],
                         env=env, timeout=600)


def planned(result: subprocess.CompletedProcess) -> dict[str, int]:
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout.split("Job stats:")[1].split("total")[0] if "Job stats:" in result.stdout else ""
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


@pytest.mark.workflow
def test_a_killed_fetch_is_never_trusted_and_one_version_is_fetched_once(stub, kaggle_env, tmp_path):
    """Killed mid-download: the rerun fetches anew; then the same version reruns nothing, offline and
    without credentials; a new pin reruns the fetch and ingest."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    env = {**os.environ, **kaggle_env}
    config = aria_config(f"{OWNER}/{SLUG}")
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    stub.mode = "stall"
    output = tmp_path / "killed.out"
    with open(output, "w") as out:
        process = subprocess.Popen([*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"),
                                    "--cores", "1", "fetch"], stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT_S * 4
        while not stub.stalled.wait(0.5) and process.poll() is None and time.monotonic() < deadline:
            pass
        assert stub.stalled.is_set(), f"the fetch never reached the download:\n{output.read_text()[-3000:]}"
        partial = workdir / "resources" / "kaggle" / OWNER / SLUG / "files" / DOWNLOAD_NAME
        deadline = time.monotonic() + WAIT_S
        while not partial.exists() and time.monotonic() < deadline:  # the client has the first bytes: writing
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # snakemake and its job, mid-download
        process.wait(WAIT_S)
    folder = workdir / "resources" / "kaggle" / OWNER / SLUG
    assert (folder / "files" / DOWNLOAD_NAME).exists() and not (folder / "receipt.json").exists()
    assert not (workdir / "results" / "original" / "manifest.parquet").exists()

    assert snakemake(workdir, config, "--unlock", env=env).returncode == 0  # what Snakemake asks after a kill
    refused = snakemake(workdir, config, "fetch", env=env)  # Snakemake knows the job did not finish
    assert refused.returncode != 0 and "IncompleteFilesException" in refused.stderr, refused.stderr[-3000:]
    assert "resources/kaggle/mehradaria/leukemia/files" in refused.stderr

    stub.mode, stub.calls = "ok", []
    done = snakemake(workdir, config, "fetch", "--rerun-incomplete", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [call for call, _ in stub.calls] == ["GetDataset", "DownloadDataset"]  # one fetch serves both datasets
    assert read_tree(folder / "files") == {**archive_tree(stub.archive), ".snakemake_timestamp": b""}  # Snakemake's
    assert json.loads((folder / "receipt.json").read_text())["version"] == CURRENT_VERSION
    for name, images in (("original", "Original"), ("segmented", "Segmented")):
        manifest = pd.read_parquet(workdir / "results" / name / "manifest.parquet")
        assert len(manifest) == 8 and manifest["path"].str.contains(f"/{images}/").all()
    log = (workdir / "results" / "logs" / "kaggle_fetch" / OWNER / f"{SLUG}.log").read_text()
    assert KEY not in log and USER not in log and base64.b64encode(f"{USER}:{KEY}".encode()).decode() not in log

    # the same version: nothing to do, no call, even with the stub down and no credentials
    stub.calls = []
    offline = {key: value for key, value in env.items() if key not in ("KAGGLE_USERNAME", "KAGGLE_KEY")}
    again = snakemake(workdir, config, "fetch", env=offline)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr and stub.calls == []

    # the version fetched, now pinned: the same version, nothing to do
    same = snakemake(workdir, aria_config(f"{OWNER}/{SLUG}/versions/{CURRENT_VERSION}"), "fetch", env=offline)
    assert same.returncode == 0 and "Nothing to be done" in same.stdout + same.stderr, same.stderr[-3000:]

    # Kaggle's current version beside the one fetched, on request
    versions = snakemake(workdir, config, "kaggle_versions", env=env)
    assert versions.returncode == 0, versions.stderr[-3000:]
    assert f"{OWNER}/{SLUG}: version {CURRENT_VERSION} fetched, Kaggle's current one: up to date" in versions.stderr
    assert stub.calls == [("GetDataset", {"ownerSlug": OWNER, "datasetSlug": SLUG})]

    # a new pin: fetched again, and everything read from it is ingested again
    stub.calls = []
    pinned = aria_config(f"{OWNER}/{SLUG}/versions/{CURRENT_VERSION - 1}")
    assert planned(snakemake(workdir, pinned, "fetch", "-n", env=env)) == {"kaggle_fetch": 1, "ingest": 2, "fetch": 1}
    without_credentials = snakemake(workdir, pinned, "fetch", "-n", env=offline)  # a fetch is due: said at start
    said = without_credentials.stdout + without_credentials.stderr
    assert without_credentials.returncode != 0 and f"datasets.original.kaggle, datasets.segmented.kaggle: {OWNER}" in said
    assert "no Kaggle credentials were found" in said and "KAGGLE_USERNAME" in said
    assert stub.calls == []  # planning asks Kaggle nothing


# --------------------------------------------------------------------------- the presets

PRESETS = sorted((REPO / "presets").glob("*.yaml"))
STUDY_DATA = {"abed2022": "andrewmvd/leukemia-classification", "rezayi2021": "andrewmvd/leukemia-classification",
              "varol2024": "andrewmvd/leukemia-classification", "reference": "mehradaria/leukemia",
              "zhang2024": "mehradaria/leukemia"}
KAGGLE_LINE = re.compile(r"^(?P<indent>[ \t]*)# (?P<line>kaggle: (?P<handle>\S+))", flags=re.M)


def dry_run_blocks(output: str, rule: str) -> list[str]:
    """The dry run's blocks of ``rule``'s jobs, in the order they are listed (the order they run)."""
    return [block for block in re.split(r"\n(?=(?:local)?rule \w+:)", output) if re.match(rf"(?:local)?rule {rule}:", block)]


def test_the_fetch_is_a_local_rule():
    rules = (REPO / "workflow" / "rules" / "data.smk").read_text()
    for rule in ("kaggle_fetch", "fetch"):
        block = re.search(rf"^rule {rule}:\n(.*?)(?:\n\n|\Z)", rules, flags=re.M | re.S)[1]
        assert "localrule: True" in block, rule  # on a cluster: on the login node, where the network is


@pytest.mark.workflow
@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_a_presets_kaggle_line_uncommented_plans_the_fetch_before_ingest(preset, tmp_path, kaggle_env):
    """One commented line names the study's Kaggle dataset; uncommented (nothing else edited), the
    preset plans one fetch, as a local job before every ingest, and never its synthetic stand-in (planned
    at its smoke run's scale: every dataset and variant, a thinned grid)."""
    text = preset.read_text()
    (line,) = KAGGLE_LINE.finditer(text)
    assert line["handle"] == STUDY_DATA[preset.stem]
    edited = tmp_path / preset.name
    edited.write_text(text[:line.start()] + line["indent"] + line["line"] + text[line.end():])
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")  # as a user runs it: on top of the default config
    result = run_snakemake([*SNAKEFILE, "--directory", tmp_path, "--configfile", edited, "--config", f"scale={SMOKE_SCALE}", "-n"],
                           env={**os.environ, **kaggle_env}, timeout=600)
    jobs = planned(result)
    config = yaml.safe_load(edited.read_text())
    read = {name for section in ("grid", "classical") for name in (config.get(section) or {}).get("dataset", [])}
    assert jobs["kaggle_fetch"] == 1 and jobs["ingest"] == len(read) and "synthesize" not in jobs
    (fetch,) = dry_run_blocks(result.stdout, "kaggle_fetch")
    owner, slug = line["handle"].split("/")
    assert f"wildcards: owner={owner}, slug={slug}" in fetch
    ingests = dry_run_blocks(result.stdout, "ingest")
    receipt = f"resources/kaggle/{owner}/{slug}/receipt.json"
    assert all(receipt in block.split("\n    output:")[0] for block in ingests)
    assert result.stdout.index(fetch) < min(result.stdout.index(block) for block in ingests)
    assert not (tmp_path / "resources").exists()  # planning fetches nothing


# --------------------------------------------------------------------------- the config check


def config_with(tmp_path: Path, **datasets) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["datasets"].update(datasets)
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def test_the_real_data_asked_for_is_never_its_stand_in():
    stand_in = {"format": "aria", "synthetic": {"seed": 0}}
    assert reader_format(stand_in) == "synthetic"
    for source in ({"kaggle": "mehradaria/leukemia"}, {"path": "/data/leukemia"}, {"url": "https://x.org/a.zip"}):
        assert reader_format({**stand_in, **source}) == "aria"


@pytest.mark.parametrize("handle", ["mehradaria", "mehradaria/leukemia/3", "a/b/versions/0", "a b/c", "https://kaggle.com/a/b"])
def test_a_malformed_kaggle_handle_is_refused_by_the_schema(tmp_path, handle):
    with pytest.raises(Exception, match="kaggle"):
        config_with(tmp_path, aria={"format": "aria", "kaggle": handle})


def test_the_config_check_names_each_kaggle_problem(tmp_path, kaggle_env, monkeypatch):
    both = config_with(tmp_path, aria={"format": "aria", "kaggle": "mehradaria/leukemia", "path": str(tmp_path)})
    assert "datasets.aria: give one of path, url or kaggle, not path and kaggle" in config_problems(both, tmp_path)
    two = config_with(tmp_path, a={"format": "aria", "kaggle": "mehradaria/leukemia"},
                      b={"format": "aria", "kaggle": "mehradaria/leukemia/versions/2"})
    assert any("datasets a, b: kaggle names mehradaria/leukemia as mehradaria/leukemia and mehradaria/leukemia/versions/2"
               in problem for problem in config_problems(two, tmp_path))
    one = config_with(tmp_path, a={"format": "aria", "kaggle": "mehradaria/leukemia"},
                      b={"format": "aria", "kaggle": "mehradaria/leukemia", "options": {"images": "segmented"}})
    assert config_problems(one, tmp_path) == []  # credentials in the environment
    monkeypatch.delenv("KAGGLE_KEY")
    (missing,) = config_problems(one, tmp_path)
    assert missing.startswith("datasets.a.kaggle, datasets.b.kaggle: mehradaria/leukemia is to be fetched")
    kaggle_json = Path(kaggle_env["KAGGLE_CONFIG_DIR"]) / "kaggle.json"
    kaggle_json.parent.mkdir()
    kaggle_json.write_text(json.dumps({"username": USER, "key": KEY}))
    assert config_problems(one, tmp_path) == []  # kaggle.json is one of the ways
    kaggle_json.write_text("{not json")
    (broken,) = config_problems(one, tmp_path)
    assert "Invalid Kaggle credentials file" in broken and str(kaggle_json) in broken


def test_a_fetched_tree_is_checked_against_its_receipt_at_start_without_credentials(stub, kaggle_env, tmp_path,
                                                                                    monkeypatch):
    folder = tmp_path / "resources" / "kaggle" / OWNER / SLUG
    fetch_kaggle(f"{OWNER}/{SLUG}", folder / "files", folder / "receipt.json")
    monkeypatch.delenv("KAGGLE_KEY")  # fetched: no credentials needed any more
    config = config_with(tmp_path, aria={"format": "aria", "kaggle": f"{OWNER}/{SLUG}"})
    assert config_problems(config, tmp_path) == []
    (folder / "files" / ".snakemake_timestamp").touch()  # Snakemake's marker is not the data
    assert config_problems(config, tmp_path) == []
    next((folder / "files").rglob("*.jpg")).unlink()
    (changed,) = config_problems(config, tmp_path)
    assert "found 15 files" in changed and f"Delete {folder}" in changed
    pinned = config_with(tmp_path, aria={"format": "aria", "kaggle": f"{OWNER}/{SLUG}/versions/{CURRENT_VERSION - 1}"})
    (due,) = config_problems(pinned, tmp_path)  # another version asked for: a fetch is due, credentials with it
    assert "no Kaggle credentials were found" in due
