#!/usr/bin/python
# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: canary_gate
short_description: An automated, explainable verdict on a canary - promote, hold or rollback
version_added: 0.1.0
description:
  - Observes the canary (the new color) and the baseline (the live color) over the same window and
    returns V(promote), V(hold) or V(rollback), with the evidence for every metric.
  - Sources - the HAProxy stats socket (counter deltas per server, health, reload detection), HAProxy's
    request log (statuses and C(%Ta) latencies per request - real percentiles), Prometheus queries, HTTP
    probes, and synthetic requests to both colors through the LB during each window (O(sources.synthetic)).
  - Every measurement keeps the figures of each side (requests, errors, error rate, p50/p95/p99, throughput,
    synthetic requests) - RV(figures), and per route in RV(routes).
  - Error rates are compared with a one-sided Fisher exact test, latencies with a one-sided Mann-Whitney U
    test (scipy), at O(confidence), next to absolute limits. Too little data (O(min_requests),
    O(min_samples)) is V(hold), never promote and never rollback; a canary that is DOWN is an immediate
    V(rollback); a window in which the counters were reset (a reload) is discarded and reported.
  - The gate fails closed - missing data (no request, no series), a value that could not be computed (a NaN from
    Prometheus) and a comparison that could not be made (too few baseline latency samples) are inconclusive
    (V(hold)) and say why, never a pass.
  - With O(sources.lb.routes) every route is observed over the same window and judged on its own; the verdict is
    the worst of the routes' (V(rollback) over V(hold) over V(promote)), and RV(routes) and each metric's C(route)
    say which route gave it.
  - Observing changes nothing, so check mode observes and judges as well, and the task never reports a change.
  - Names sent to HAProxy (O(sources.haproxy_stats.backend), O(sources.haproxy_log.backend), the routes of
    O(sources.lb), and O(baseline) and O(canary) with the HAProxy sources) are refused before anything is sent
    unless they are HAProxy names - 1 to 128 of the characters C([A-Za-z0-9_.:-]) - so none can carry a
    second Runtime API command.
author:
  - Switchyard developers (@switchyard)
requirements:
  - scipy on the host that runs the module.
  - With O(sources.containers), the Docker SDK for Python (C(docker)) and the docker CLI on that host.
extends_documentation_fragment:
  - switchyard.release.lease
  - switchyard.release.gate_limits
attributes:
  check_mode:
    description: Observes and judges; nothing is changed in either mode.
    support: full
  diff_mode:
    description: Nothing to compare.
    support: none
options:
  baseline:
    description: The live color - its server in the backend (C(api_blue)), or with O(sources.lb) the color (C(blue)).
    type: str
    required: true
  canary:
    description: The new color - its server in the backend (C(api_green)), or with O(sources.lb) the color (C(green)).
    type: str
    required: true
  window:
    description: Seconds to observe.
    type: float
    required: true
  count:
    description: Measurements in the window (each of O(window) / O(count) seconds unless O(interval) is given).
    type: int
    default: 1
  interval:
    description: Seconds per measurement.
    type: float
  initial_delay:
    description: Seconds to wait before the first measurement (warm-up of the new color).
    type: float
    default: 0
  sources:
    description: Where the evidence comes from - one or more of the sources below.
    type: dict
    required: true
    suboptions:
      haproxy_stats:
        description: Counter deltas, health and reload detection from HAProxy's stats socket.
        type: dict
        suboptions:
          socket:
            description:
              - The Runtime API socket (a path, or C(tcp://HOST:PORT)). The gate only reads - C(user) level is
                enough, so give a read-only socket (the lb role's C(run/status.sock)), never the admin one.
            type: str
            required: true
          backend:
            description: The backend of the two servers, for example C(be_api) (an HAProxy name).
            type: str
            required: true
          timeout:
            description: Seconds to wait for the socket.
            type: float
            default: 5
      haproxy_log:
        description:
          - Per-request statuses and latencies from HAProxy's log lines (C(%b/%s %ST %Tr %Ta)) - real percentiles.
          - Give exactly one of O(sources.haproxy_log.container) and O(sources.haproxy_log.path).
        type: dict
        suboptions:
          container:
            description: The HAProxy container, read with C(docker logs --since --until) for the window.
            type: str
          path:
            description: A log file; the lines appended during the window are read.
            type: path
          backend:
            description: The backend of the two servers; defaults to O(sources.haproxy_stats.backend).
            type: str
          docker_cli:
            description: The docker client.
            type: path
            default: docker
      prometheus:
        description: Prometheus instant queries, each with limits.
        type: dict
        suboptions:
          url:
            description:
              - The Prometheus base URL. Credentials in it (C(https://user:password@host)) are sent as basic
                authentication and never shown - the URL is echoed as C(https://user:****@host) and the password
                is masked in the result and in error messages.
              - C(no_log) - so that Ansible hides it also in the arguments it echoes when they are refused (a
                O(window) that is not a number) before the module could mask the credentials itself.
            type: str
            required: true
          timeout:
            description: Seconds per query.
            type: float
            default: 10
          queries:
            description: The queries; no data is inconclusive, never a pass.
            type: list
            elements: dict
            default: []
            suboptions:
              name:
                description: The metric's name in the verdict; defaults to the query.
                type: str
              query:
                description:
                  - The PromQL query (an instant vector or a scalar). Every series it returns is compared with the
                    limits and the worst is reported; no series, or a value that is NaN, is inconclusive.
                type: str
                required: true
              max:
                description: Fail above this value.
                type: float
              min:
                description: Fail below this value.
                type: float
      lb:
        description:
          - The counters (deltas, health, reload detection) and the request log (statuses, latencies) of routes of
            the application's LB, through the LB interface, whatever its kind - what the canary role uses. With it,
            O(baseline) and O(canary) are colors (V(blue), V(green)).
          - Give exactly one of O(sources.lb.route) and O(sources.lb.routes).
        type: dict
        suboptions:
          kind:
            description: The kind of load balancer.
            type: str
            choices: [haproxy, nginx, traefik]
            default: haproxy
          dir:
            description:
              - The LB's host directory. For HAProxy the counters are read through C(run/status.sock) (the lb role's
                read-only, C(level user) socket) - through C(run/admin.sock) only where there is no C(status.sock),
                and through the master CLI (C(run/master.sock)) when that socket does not answer.
            type: path
            required: true
          container:
            description: The LB's container, whose log carries the requests (C(docker logs --since --until)).
            type: str
          timeout:
            description: Seconds to wait for the LB's control socket.
            type: float
            default: 5
          route:
            description: The route judged, for example C(api).
            type: str
          routes:
            description:
              - Every route judged, over the same window, for example V([api, web]); the verdict is the worst of the
                routes'; the counts of each measurement are per route.
            type: list
            elements: str
      containers:
        description:
          - Docker's own view of the baseline's and the canary's containers, found by their Compose project
            (label C(com.docker.compose.project)), over each measurement - health and restarts (C(docker inspect)),
            CPU time and memory (the Engine's one-shot stats, through the Docker SDK for Python), and the error lines
            of their logs (C(docker logs --since --until), streamed).
          - The canary's health and restarts are judged whatever the traffic - a restart or a replaced container
            during the window, or a container that is unhealthy or not running at its end, fails (V(rollback)); a
            canary project without a container fails (nothing runs); one still starting is inconclusive. A job
            that ran to completion (exited 0, restart policy C(no)) is not judged, nor a C(docker compose run)
            one-off.
          - CPU per request, memory per container and error log lines per request are compared with the
            baseline's, each with a tolerance so that idle noise is not judged. With fewer than O(min_requests)
            requests on either side (per request comparisons) or no baseline container, they are inconclusive -
            never a pass. A container whose logging driver Docker cannot read back (C(none)) leaves the window
            without a C(log_errors) metric, with a warning.
          - Costs per measurement two C(docker) commands and a few Engine API calls per container at each end of
            the window (well under half a second for two colors of one container each).
        type: dict
        suboptions:
          projects:
            description: The Compose projects of the two sides.
            type: dict
            required: true
            suboptions:
              baseline:
                description: The baseline's project, for example C(shop-blue).
                type: str
                required: true
              canary:
                description: The canary's project, for example C(shop-green).
                type: str
                required: true
          docker_cli:
            description: The docker client.
            type: path
            default: docker
          docker_host:
            description: The Docker daemon (C(DOCKER_HOST)), for the client and the SDK; the local socket when omitted.
            type: str
          timeout:
            description: Seconds to wait for an Engine API call.
            type: float
            default: 10
          log_patterns:
            description:
              - Regular expressions (searched) that make a log line an error line. A Python traceback counts once,
                not once per line.
            type: list
            elements: str
            default: ['Traceback \(most recent call last\)', '\bERROR\b', '\bFATAL\b', '\bpanic\b']
          max_restarts:
            description: Restarts of the canary's containers tolerated during a window (a replaced container counts).
            type: int
            default: 0
          max_cpu_ratio:
            description:
              - Fail when the canary's CPU time per request is more than this times the baseline's...
              - ... and its CPU beyond what its containers would use at a baseline container's CPU, per canary
                request, more than this minus 1 times the baseline's per request (idle CPU spread over a small
                step's few requests is not a rollback).
            type: float
            default: 2.0
          cpu_tolerance_ms:
            description: ... and more than this many milliseconds of CPU per request above it.
            type: float
            default: 2.0
          max_memory_ratio:
            description: Fail when the canary's memory per container is more than this times the baseline's...
            type: float
            default: 1.5
          memory_tolerance_mib:
            description: ... and more than this many MiB above it.
            type: float
            default: 64
          max_log_error_ratio:
            description:
              - Fail when the canary's error lines per request are more than this times the baseline's plus
                O(sources.containers.log_error_tolerance).
            type: float
            default: 2.0
          log_error_tolerance:
            description:
              - Error lines per request the canary may have above the baseline's scaled rate - what lets a baseline
                without errors be compared (V(0.01) - one error line per 100 requests).
            type: float
            default: 0.01
          max_log_errors:
            description: Fail when the canary's logs get more error lines than this in a window, whatever the traffic.
            type: int
      http_probe:
        description: Synthetic HTTP requests, for example through the LB with C(X-Canary).
        type: dict
        suboptions:
          url:
            description:
              - The URL probed; credentials in it are never shown, as for O(sources.prometheus.url).
              - C(no_log), as O(sources.prometheus.url).
            type: str
            required: true
          headers:
            description:
              - Request headers.
              - C(no_log) - the values are hidden in the echoed arguments. The values of headers named like
                credentials - any name containing, in any case, C(authorization), C(cookie), C(token), C(secret),
                C(password), C(passwd), C(key), C(auth), C(session), C(signature) or C(credential) (C(X-Api-Key),
                C(Ocp-Apim-Subscription-Key)) - are also masked wherever they appear in the result when at least 4
                characters long; the values of the others (C(X-Canary) set to V(green)) are not, or every V(green)
                of the verdict would read C(********).
            type: dict
            default: {}
          count:
            description: Probes per measurement.
            type: int
            default: 10
          timeout:
            description: Seconds per probe.
            type: float
            default: 5
          expect_status:
            description: The status every probe must get.
            type: int
            default: 200
          max_latency_ms:
            description: Fail when the probes' p95 is above this.
            type: float
          expect_header:
            description:
              - Every answer must carry this header matching this pattern, for example the server that answered
                (the smoke probes check that C(X-Canary) reached the candidate).
            type: dict
            suboptions:
              name:
                description: The response header.
                type: str
                required: true
              pattern:
                description: A regular expression its value must match (searched).
                type: str
                required: true
      synthetic:
        description:
          - Synthetic requests through the LB's public address to both colors during each measurement's window,
            spread evenly over it and sent in the background (none starts after the window's end), each pinned to
            its color by the trusted canary header (C(X-Canary) - the gate runs on the Docker host, which the LB
            trusts).
          - Through the LB, its log counts them like any other request, so they fill O(min_requests) and
            O(min_samples) when real traffic is thin - a quiet service can be judged. They are marked in the
            evidence - per color the number sent, answered and failed and their share of the sample (RV(figures)).
          - Their query carries C(switchyard-synthetic=1), so the LB's log (its request line) tells them from real
            traffic, which is split by weight while they go equally to each color. The judge compares like with
            like - the real requests when both colors have O(min_requests) of them (O(min_samples) real latencies
            for the latencies), otherwise the synthetic ones; each metric says which in C(sample).
          - Without a source that reads the LB (O(sources.lb), O(sources.haproxy_log), O(sources.haproxy_stats)),
            their own answers are the sample (metrics of source V(synthetic)).
        type: dict
        suboptions:
          url:
            description:
              - The LB's public base URL as the Docker host reaches it, for example C(http://127.0.0.1:8080);
                credentials in it are never shown, as for O(sources.prometheus.url).
              - C(no_log), as O(sources.prometheus.url).
            type: str
            required: true
          path:
            description: The path requested (a route of the application; not a health path that never fails).
            type: str
            default: /
          rate:
            description: Requests per second to each color (over a window of 60 seconds, V(5) sends 300 to each).
            type: float
            default: 5
          timeout:
            description:
              - Seconds per request. None starts after the window's end; one in flight then has its whole timeout
                (the measurement waits for it).
            type: float
            default: 5
          expect_status:
            description: The status a request must get; any other, or no answer, counts as failed.
            type: int
            default: 200
          headers:
            description:
              - More request headers. C(no_log); the values of headers named like credentials are masked in the result,
                as for O(sources.http_probe.headers).
            type: dict
            default: {}
          header:
            description: The canary header that pins a request to a color.
            type: str
            default: X-Canary
          values:
            description:
              - The header's value per side; default O(baseline) and O(canary) (colors with O(sources.lb)). Give them
                with the HAProxy sources, whose O(baseline) and O(canary) are server names (C(api_blue)).
            type: dict
            suboptions:
              baseline:
                description: The value for the baseline, for example V(blue).
                type: str
              canary:
                description: The value for the canary, for example V(green).
                type: str
  failure_limit:
    description: Failed measurements tolerated before V(rollback).
    type: int
    default: 0
  inconclusive_limit:
    description: Inconclusive measurements tolerated before O(on_inconclusive_limit) applies.
    type: int
    default: 0
  on_inconclusive_limit:
    description: The verdict once O(inconclusive_limit) is passed.
    type: str
    choices: [hold, rollback]
    default: hold
"""

EXAMPLES = r"""
- name: Judge green against blue on every route of the application over one window
  switchyard.release.canary_gate:
    baseline: blue
    canary: green
    window: 60
    sources:
      lb: {dir: /var/lib/switchyard/shop/lb, container: shop-lb-haproxy-1, routes: [api, web]}
  register: gate

- name: Judge 10 % of traffic on green for a minute
  switchyard.release.canary_gate:
    baseline: api_blue
    canary: api_green
    window: 60
    sources:
      haproxy_stats: {socket: /var/lib/switchyard/shop/lb/run/status.sock, backend: be_api}
      haproxy_log: {container: shop-lb-haproxy-1}
    max_error_rate: 0.01
    max_p95_ms: 500
  register: gate
"""

RETURN = r"""
verdict:
  description: V(promote), V(hold) or V(rollback).
  returned: always
  type: str
reason:
  description: A sentence saying why.
  returned: always
  type: str
metrics:
  description:
    - Every metric of the last measurement - metric, status (pass, fail, inconclusive), canary and baseline
      values, sample sizes, test and p_value where a test ran, limit, source and a reason; with O(sources.lb) the
      route it belongs to; from a request log, the requests compared (sample - V(real) or V(synthetic), see
      O(sources.synthetic)).
    - An inconclusive metric says why in its reason (too little traffic, too few samples, no data, NaN).
  returned: always
  type: list
  elements: dict
figures:
  description:
    - The figures of each side in the last measurement, summed over the routes - C(baseline) and C(canary), each
      with C(name) (the color or server), C(requests), C(errors), C(error_rate) (errors / requests, null without
      requests), C(p50_ms), C(p95_ms), C(p99_ms) (from the request log; null from counters alone),
      C(throughput_rps) (requests / the measurement's seconds), and the synthetic requests - C(synthetic_sent),
      C(synthetic_answered), C(synthetic_failed) (not answered O(sources.synthetic.expect_status)) and
      C(synthetic_share) (answered / requests, at most 1; null without requests), C(real_requests) and
      C(synthetic_requests) (of the requests, those without and with the synthetic marker in the request log;
      null without a request log). With O(sources.containers) the
      container figures are added to each side.
    - Without a source that reads the traffic (Prometheus or probes alone), the traffic figures are null.
    - Numbers only; the per-request samples are never returned.
  returned: always
  type: dict
  sample:
    baseline: {name: blue, requests: 318, errors: 0, error_rate: 0.0, p50_ms: 2, p95_ms: 4, p99_ms: 6,
               throughput_rps: 5.3, synthetic_sent: 300, synthetic_answered: 300, synthetic_failed: 0,
               synthetic_share: 0.9434, real_requests: 18, synthetic_requests: 300}
    canary: {name: green, requests: 302, errors: 0, error_rate: 0.0, p50_ms: 2, p95_ms: 5, p99_ms: 7,
             throughput_rps: 5.033, synthetic_sent: 300, synthetic_answered: 300, synthetic_failed: 0,
             synthetic_share: 0.9934, real_requests: 2, synthetic_requests: 300}
routes:
  description:
    - With O(sources.lb), each route's verdict and reason over the measurements, worst first, the metrics of
      its last measurement that did not pass (not_passed), and its figures in the last measurement (figures -
      per side the keys of RV(figures) without the C(synthetic_*) and container ones).
  returned: when O(sources.lb) is given
  type: list
  elements: dict
  sample:
    - {route: web, verdict: rollback, reason: "1 failed measurement(s), more than failure_limit=0",
       not_passed: [error_rate, error_rate_increase]}
    - {route: api, verdict: promote, reason: "all 1 measurement(s) passed", not_passed: []}
measurements:
  description:
    - Each measurement - start, end, metrics, verdict, counter_resets, counts, figures (as RV(figures)) and, with
      O(sources.lb), route_figures (per route, the figures of RV(routes)).
    - counts is per server (per color with O(sources.lb.route)); with O(sources.lb.routes) it is per route, then color.
  returned: always
  type: list
  elements: dict
evidence:
  description:
    - What a ledger keeps of the verdict, bounded in size - verdict, reason, window, routes (route, verdict,
      not_passed), every metric with all its values (scalars, and a limit's min and max; no lists), figures (as
      RV(figures)), route_figures (with O(sources.lb), per route then side), and measurements (start, end,
      verdict, figures and route_figures of each of the last 60 measurements).
    - The canary role records it as the step's verdict with C(release_state).
  returned: always
  type: dict
window:
  description: Start and end of the observation (UTC, ISO 8601).
  returned: always
  type: dict
counter_resets:
  description: Why a window was discarded (a reload reset the counters, or the LB did not answer).
  returned: always
  type: list
  elements: str
unobserved:
  description:
    - The reasons of windows in which the LB could not be observed at all (its control socket did not answer). A hold on
      such windows means nothing was seen, not too little traffic - the canary role never promotes it by policy.
  returned: always
  type: list
  elements: str
pool:
  description:
    - What M(switchyard.release.fleet_gate) needs to judge this host's last measurement together with the other
      hosts' - numbers only, no log line, URL or header.
    - C(version) (1); C(source) - the source whose requests were counted (V(lb), V(haproxy_log), V(haproxy_stats),
      V(synthetic); null when none reads the traffic - Prometheus or probes alone - and C(routes) is then empty);
      C(start) and C(end) of the last measurement; C(exact) (false when a latency histogram had to be rounded, below);
      C(own_verdict) and C(own_reason) - the verdict once this host's traffic is judged in a pool, that is with its
      traffic metrics that were inconclusive for too little traffic left to the pool (never worse than RV(verdict); a
      hold that remains is one a pool cannot lift - an LB not observed, a reload, a container, Prometheus);
      C(routes) - per route (C(route) null without O(sources.lb)) C(baseline) and C(canary), each null when the
      window was discarded, else C(requests), C(errors), C(latency_ms) and, when the LB's log tells them apart,
      C(synthetic) (the same three for the synthetic requests; the real ones are the rest).
    - C(latency_ms) is a histogram - V([[value, count], ...]) sorted by value, null from counters alone - of the
      latencies as the log gave them (whole milliseconds for HAProxy and Nginx), the same multiset as the samples, so
      percentiles and the Mann-Whitney test over hosts pooled are those over their samples together. A side with more
      than 500 distinct values (Traefik's microseconds, the gate's own probes) is rounded to whole milliseconds and
      C(exact) is false.
  returned: always
  type: dict
  sample:
    version: 1
    source: lb
    start: "2025-05-02T10:00:00.120000+00:00"
    end: "2025-05-02T10:01:00.121000+00:00"
    exact: true
    own_verdict: promote
    own_reason: all 1 measurement(s) passed
    routes:
      - route: api
        baseline: {requests: 318, errors: 0, latency_ms: [[1, 250], [2, 60], [4, 8]],
                   synthetic: {requests: 300, errors: 0, latency_ms: [[1, 240], [2, 55], [4, 5]]}}
        canary: {requests: 302, errors: 1, latency_ms: [[1, 230], [2, 66], [5, 5]],
                 synthetic: {requests: 300, errors: 1, latency_ms: [[1, 229], [2, 66], [5, 4]]}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.switchyard.release.plugins.module_utils.canary.containers import containers_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.canary.gate import CanaryGate
from ansible_collections.switchyard.release.plugins.module_utils.canary.judge import limits_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.common.module import run_module
from ansible_collections.switchyard.release.plugins.module_utils.lb.kinds import lb_argument_spec
from ansible_collections.switchyard.release.plugins.module_utils.release.lease import lease_argument_spec

SOURCES_SPEC = {
    "haproxy_stats": {
        "type": "dict",
        "options": {
            "socket": {"type": "str", "required": True},
            "backend": {"type": "str", "required": True},
            "timeout": {"type": "float", "default": 5},
        },
    },
    "haproxy_log": {
        "type": "dict",
        "options": {
            "container": {"type": "str"},
            "path": {"type": "path"},
            "backend": {"type": "str"},
            "docker_cli": {"type": "path", "default": "docker"},
        },
        "mutually_exclusive": [("container", "path")],
        "required_one_of": [("container", "path")],
    },
    "prometheus": {
        "type": "dict",
        "options": {
            "url": {"type": "str", "required": True, "no_log": True},
            "timeout": {"type": "float", "default": 10},
            "queries": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str"},
                    "query": {"type": "str", "required": True},
                    "max": {"type": "float"},
                    "min": {"type": "float"},
                },
            },
        },
    },
    "lb": {
        "type": "dict",
        "options": {
            **lb_argument_spec()["lb"]["options"],
            "route": {"type": "str"},
            "routes": {"type": "list", "elements": "str"},
        },
        "mutually_exclusive": [("route", "routes")],
        "required_one_of": [("route", "routes")],
    },
    "containers": containers_argument_spec(),
    "http_probe": {
        "type": "dict",
        "options": {
            "url": {"type": "str", "required": True, "no_log": True},
            "headers": {"type": "dict", "default": {}, "no_log": True},
            "count": {"type": "int", "default": 10},
            "timeout": {"type": "float", "default": 5},
            "expect_status": {"type": "int", "default": 200},
            "max_latency_ms": {"type": "float"},
            "expect_header": {
                "type": "dict",
                "options": {"name": {"type": "str", "required": True}, "pattern": {"type": "str", "required": True}},
            },
        },
    },
    "synthetic": {
        "type": "dict",
        "options": {
            "url": {"type": "str", "required": True, "no_log": True},
            "path": {"type": "str", "default": "/"},
            "rate": {"type": "float", "default": 5},
            "timeout": {"type": "float", "default": 5},
            "expect_status": {"type": "int", "default": 200},
            "headers": {"type": "dict", "default": {}, "no_log": True},
            "header": {"type": "str", "default": "X-Canary"},
            "values": {"type": "dict", "options": {"baseline": {"type": "str"}, "canary": {"type": "str"}}},
        },
    },
}

ARGUMENT_SPEC = {
    "baseline": {"type": "str", "required": True},
    "canary": {"type": "str", "required": True},
    "window": {"type": "float", "required": True},
    "count": {"type": "int", "default": 1},
    "interval": {"type": "float"},
    "initial_delay": {"type": "float", "default": 0},
    "sources": {"type": "dict", "required": True, "options": SOURCES_SPEC},
    "failure_limit": {"type": "int", "default": 0},
    "inconclusive_limit": {"type": "int", "default": 0},
    "on_inconclusive_limit": {"type": "str", "choices": ["hold", "rollback"], "default": "hold"},
    **limits_argument_spec(),
    **lease_argument_spec(),
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, CanaryGate)


if __name__ == "__main__":
    main()
