# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Paired with module_utils/canary/judge.py: limits_argument_spec().

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  max_error_rate:
    description: Highest acceptable error rate of the canary (5xx and unanswered requests).
    type: float
    default: 0.01
  max_error_rate_increase:
    description: Highest acceptable increase of the canary's error rate over the baseline's, when significant.
    type: float
    default: 0.0
  max_p95_ms:
    description: Highest acceptable 95th percentile of the canary's latency (from the log).
    type: float
  max_p99_ms:
    description: Highest acceptable 99th percentile of the canary's latency (from the log).
    type: float
  max_latency_ratio:
    description: Highest acceptable ratio of canary p95 to baseline p95, when the canary is significantly slower.
    type: float
    default: 1.5
  latency_tolerance_ms:
    description:
      - A latency ratio fails only when the canary's p95 is also more than this many milliseconds above the
        baseline's. HAProxy logs whole milliseconds, so for a fast service a p95 of 1 ms against 0 ms is no evidence.
    type: float
    default: 5
  confidence:
    description: Confidence of the one-sided tests (0.95 means p < 0.05 is significant).
    type: float
    default: 0.95
  min_requests:
    description: Requests needed on each side to judge error rates (300 bounds a zero-error rate near 1 %).
    type: int
    default: 300
  min_samples:
    description: Latency samples needed to judge latencies.
    type: int
    default: 50
  fail_on:
    description: V(rollback) fails the task on a rollback verdict (so a rescue takes over), listing the failing metrics.
    type: str
    choices: [rollback, never]
    default: rollback
"""
