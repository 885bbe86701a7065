"""The files a researcher expects next to the code: the licence setup.cfg declares, in
full, and a citation file that agrees with the package metadata."""

from __future__ import annotations

import configparser
import hashlib
from pathlib import Path

import yaml

import semsim

ROOT = Path(__file__).resolve().parents[2]
#: SHA-256 of the canonical Apache License 2.0 text (apache.org/licenses/LICENSE-2.0.txt,
#: as shipped in Debian's /usr/share/common-licenses/Apache-2.0).
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def metadata_section() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    return cfg["metadata"]


def test_license_is_the_full_text_setup_cfg_declares():
    assert metadata_section()["license"] == "Apache-2.0"
    text = (ROOT / "LICENSE").read_bytes()
    assert hashlib.sha256(text).hexdigest() == APACHE_2_SHA256


def test_citation_file_matches_the_package():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0"
    assert citation["version"] == semsim.__version__
    assert citation["license"] == metadata_section()["license"]
    assert citation["title"].startswith("semsim")
    assert citation["authors"]
