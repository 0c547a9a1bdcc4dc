"""The testbed's Prometheus scraping an LB's HAProxy exporter: a file_sd target list per LB, which
Prometheus picks up by itself (no reload), and queries of its HTTP API."""

from __future__ import annotations

import json
import os
import time

import requests

from support.stack import Stack
from support.testbed import Testbed


class Scrape:
    """An LB's exporter (the lb role's switchyard_lb_metrics_port) as a scrape target, labelled app=<app>."""

    def __init__(self, testbed: Testbed, stack: Stack) -> None:
        self.url = testbed.prometheus_url
        self.auth = testbed.prometheus_auth
        user, password = self.auth
        # The URL the gate is given: the credentials in it, as sources.prometheus.url takes them.
        self.url_with_credentials = self.url.replace("://", f"://{user}:{password}@", 1)
        self.app = stack.app
        self.target = f"127.0.0.1:{stack.metrics_port}"
        self.file = testbed.prometheus_targets / f"{stack.app}.json"

    def start(self, seconds: float = 30) -> Scrape:
        """List the target (written aside and renamed: Prometheus never reads half a file) and wait until
        Prometheus has scraped it successfully."""
        partial = self.file.with_suffix(".partial")
        partial.write_text(json.dumps([{"targets": [self.target], "labels": {"app": self.app}}]))
        os.replace(partial, self.file)
        self.wait(f'up{{app="{self.app}"}} == 1', seconds)
        return self

    def stop(self) -> None:
        self.file.unlink(missing_ok=True)

    def query(self, promql: str) -> list[dict]:
        resp = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, auth=self.auth, timeout=5)
        resp.raise_for_status()
        return resp.json()["data"]["result"]

    def wait(self, promql: str, seconds: float) -> list[dict]:
        """Until the query returns a series."""
        deadline = time.monotonic() + seconds
        while not (result := self.query(promql)):
            assert time.monotonic() < deadline, f"Prometheus at {self.url} returned nothing for {promql} in {seconds} s"
            time.sleep(0.25)
        return result
