# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""release_state's parameters: what argument_spec cannot check (patterns, colors, weights that arrive
from templates as strings, the free-form step), normalised before anything is read."""

from __future__ import annotations

import re

from ansible_collections.switchyard.release.plugins.module_utils.lb.base import MAX_WEIGHT
from ansible_collections.switchyard.release.plugins.module_utils.release.ledger import COLORS, LedgerError
from ansible_collections.switchyard.release.plugins.module_utils.release.plan import check_strategy

ACTIONS = ("get", "plan", "lock", "renew", "unlock", "begin", "step", "promote", "rollback", "fail", "retire", "drill")
DRILL_OUTCOMES = ("running", "done", "failed")  # running: the traffic moved, not back yet (or killed)
VERDICTS = ("promote", "hold", "rollback")
APP_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
RELEASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]+$")
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
# What keeps a user on one variant of an A/B experiment: a cookie's or a header's name (HTTP token characters).
EXPERIMENT_KEY_PATTERN = re.compile(r"^(cookie|header) [A-Za-z0-9!%&*+.^_`|~-]{1,64}$")
# A version is a label: it is written into the colors' color.env (KEY=value lines), the ledger and the reports,
# so nothing that ends a line or a value, at a length that stays readable.
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
VERSION_RULE = "a letter or digit, then up to 127 of A-Z a-z 0-9 . _ + - (such as v2, 1.4.0 or 2.0.0-rc.1+build.7)"
# Actions that need the token of the run holding the lock.
TOKEN_ACTIONS = ("renew", "step")


def _check_pattern(name, value, pattern):
    if not isinstance(value, str) or not pattern.match(value):
        raise LedgerError(f"{name}: {value!r} does not match {pattern.pattern}")


def normalize_weights(weights, where):
    """color -> int 0..256 (values from templates arrive as strings)."""
    if weights is None:
        return None
    if not isinstance(weights, dict):
        raise LedgerError(f"{where}: expected a mapping of color to weight, got {weights!r}")
    normalized = {}
    for color, weight in weights.items():
        if color not in COLORS:
            raise LedgerError(f"{where}: {color!r} is not a color (blue, green)")
        try:
            if isinstance(weight, bool):
                raise ValueError(weight)
            value = int(weight)
        except (TypeError, ValueError) as exc:
            raise LedgerError(f"{where}: the weight of {color} is {weight!r}, not an integer") from exc
        if not 0 <= value <= MAX_WEIGHT:
            raise LedgerError(f"{where}: the weight of {color} is {value}, outside 0..{MAX_WEIGHT}")
        normalized[color] = value
    return normalized


def _normalize_strings(values, where):
    if not isinstance(values, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
        raise LedgerError(f"{where}: expected a list of migration names, got {values!r}")
    return [str(v) for v in values]


def normalize_images(images, where="images"):
    if images is None:
        return {}
    if not isinstance(images, dict) or not all(isinstance(v, str) for v in images.values()):
        raise LedgerError(f"{where}: expected a mapping of service to image reference, got {images!r}")
    return dict(images)


def normalize_step(step):
    """The step as stored: its keys as given, the special ones checked and normalized."""
    if not isinstance(step, dict):
        raise LedgerError(f"step: expected a mapping with at least a name, got {step!r}")
    name = step.get("name")
    if not isinstance(name, str) or not name:
        raise LedgerError("step: name is required (a non-empty string)")
    normalized = {key: value for key, value in step.items() if key not in ("at", "updated_at")}
    if "weights" in step:
        normalized["weights"] = normalize_weights(step["weights"], "step.weights")
    for key in ("migrations_applied", "migrations_contracted"):
        if key in step:
            normalized[key] = _normalize_strings(step[key], f"step.{key}")
    if "verdict" in step:
        verdict = step["verdict"]
        if not isinstance(verdict, dict) or verdict.get("verdict") not in VERDICTS:
            raise LedgerError(
                f"step.verdict: expected a mapping with verdict (one of {', '.join(VERDICTS)}) and reason, "
                f"got {verdict!r}"
            )
        normalized["verdict"] = dict(verdict)
    for flag in ("deployed", "deploying"):
        if flag in step and not isinstance(step[flag], bool):
            raise LedgerError(f"step.{flag}: expected true or false, got {step[flag]!r}")
    if step.get("deployed") and "images" in step:
        normalized["images"] = normalize_images(step["images"], "step.images")
    return normalized


def normalize_drill(drill, release_id):
    """A drill's record as stored (release_state action=drill): its id is the release_id; colors, share, outcome
    and the measured figures checked, so the summary and the reports can rely on their types."""
    if not isinstance(drill, dict):
        raise LedgerError(f"drill: expected a mapping (to, from, percent, outcome...), got {drill!r}")
    record = dict(drill)
    if record.setdefault("id", release_id) != release_id:
        raise LedgerError(f"drill.id={record['id']!r} differs from release_id={release_id!r}")
    for key in ("to", "from"):
        if record.get(key) not in COLORS:
            raise LedgerError(f"drill.{key}: {record.get(key)!r} is not a color (blue, green)")
    if record["to"] == record["from"]:
        raise LedgerError(f"drill: to and from are both {record['to']}")
    if record.get("outcome") not in DRILL_OUTCOMES:
        raise LedgerError(f"drill.outcome: {record.get('outcome')!r} is not one of {', '.join(DRILL_OUTCOMES)}")
    percent = record.get("percent")
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
        raise LedgerError(f"drill.percent: {percent!r} is not a whole percentage from 1 to 100")
    for key in ("rto_ms", "back_ms"):
        if record.get(key) is not None and (isinstance(record[key], bool) or not isinstance(record[key], (int, float))):
            raise LedgerError(f"drill.{key}: {record[key]!r} is not a number of milliseconds (or null)")
    failed = record.get("failed_requests")
    if failed is not None and (isinstance(failed, bool) or not isinstance(failed, int) or failed < 0):
        raise LedgerError(f"drill.failed_requests: {failed!r} is not a count (or null)")
    return record


def check_version(name, version):
    """A version label (switchyard_version), or LedgerError naming name and the characters allowed."""
    if not isinstance(version, str) or VERSION_PATTERN.fullmatch(version) is None:
        raise LedgerError(f"{name}={version!r} is not a version label: use {VERSION_RULE}")
    return version


def validate_params(params):
    """Check what argument_spec cannot; returns the parameters with weights, images and step normalized."""
    params = dict(params)
    _check_pattern("app", params["app"], APP_PATTERN)
    if params.get("release_id") is not None:
        _check_pattern("release_id", params["release_id"], RELEASE_ID_PATTERN)
    elif params["action"] not in ("get", "plan", "renew"):
        raise LedgerError(f"release_id is required with action={params['action']}")
    if params.get("lock_token") is not None:
        _check_pattern("lock_token", params["lock_token"], TOKEN_PATTERN)
    elif params["action"] in TOKEN_ACTIONS or (params["action"] == "begin" and not params.get("take_lock")):
        raise LedgerError(
            f"lock_token is required with action={params['action']}: the token that action=lock (or begin with "
            "take_lock) returned to the run holding the release lock"
        )
    if params.get("lock_ttl", 1) <= 0:
        raise LedgerError(f"lock_ttl: {params['lock_ttl']} is not a positive number of seconds")
    if params.get("history_limit", 1) < 1:
        raise LedgerError(f"history_limit: {params['history_limit']} must be at least 1")
    # A new version is checked where it enters: the plan and the beginning of a release (not a rollback's
    # version, which comes from the ledger).
    plan = params.get("plan") or {}
    if params["action"] == "plan" and plan.get("kind") == "release" and plan.get("version"):
        check_version("plan.version", plan["version"])
    if params["action"] == "begin" and params.get("kind") in (None, "release") and params.get("version"):
        check_version("version", params["version"])
    experiment = params.get("experiment")
    if experiment:
        if not 1 <= experiment["share"] <= 99:
            raise LedgerError(f"experiment.share: {experiment['share']} must be from 1 to 99 (% of users on B)")
        _check_pattern("experiment.key", experiment["key"], EXPERIMENT_KEY_PATTERN)
    # switchyard_strategy, refused naming the allowed values before the ledger is read.
    if params["action"] == "plan" and plan.get("kind") == "release":
        check_strategy(plan.get("strategy") or "canary")
    if params["action"] == "begin" and params.get("strategy") is not None:
        check_strategy(params["strategy"])
    params["weights"] = normalize_weights(params.get("weights"), "weights")
    params["images"] = normalize_images(params.get("images"))
    if params["action"] == "step":
        params["step"] = normalize_step(params.get("step"))
    if params["action"] == "drill":
        params["drill"] = normalize_drill(params.get("drill"), params["release_id"])
    if params["action"] == "rollback" and not params.get("color"):
        raise LedgerError(f"color is required with action={params['action']}")
    return params
