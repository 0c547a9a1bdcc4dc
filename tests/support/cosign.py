"""cosign output recorded on the testbed (tests/unit/fixtures/cosign-2.5.0), answered by command."""

from __future__ import annotations

from support.recorded import COSIGN

DIGESTS = dict(line.split() for line in (COSIGN / "digests.txt").read_text().splitlines())
V1 = DIGESTS["v1"]  # signed, SPDX attested
V3 = DIGESTS["v3"]  # signed, SPDX and CycloneDX attested
V1_DIGEST = V1.split("@")[1]
V3_DIGEST = V3.split("@")[1]
PEM = (COSIGN / "cosign.pub").read_text()


def recorded(name: str) -> tuple[int, str, str]:
    """rc, stdout, stderr of the recording NAME."""
    return (
        int((COSIGN / f"{name}.rc").read_text()),
        (COSIGN / f"{name}.stdout").read_text(),
        (COSIGN / f"{name}.stderr").read_text(),
    )


class RecordedRunner:
    """A CommandRunner answering each cosign command with what the real one printed for the same question."""

    def __init__(self, answers: dict[tuple[str, str, str | None], str]):
        self.answers = answers  # (subcommand, image, --type or None) -> recording name
        self.calls: list[list[str]] = []

    def run(self, args, what, check=True, data=None):
        self.calls.append(list(args))
        kind = args[args.index("--type") + 1] if "--type" in args else None
        return recorded(self.answers[(args[1], args[-1], kind)])
