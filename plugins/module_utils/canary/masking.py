# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gate's secrets - probe headers that carry credentials, and the credentials of a URL - never shown.

`sources.http_probe.headers` (and `sources.synthetic.headers`) is no_log, but only the values of headers
named like credentials (Authorization, Cookie, X-Api-Key...) stay on the mask list: masking
`X-Canary: green` would turn every `green` of the verdict into `********`. The URLs (Prometheus, the
probes) are echoed with their userinfo masked (`https://user:****@host`), and their credentials are
masked in the rest of the result. The URL options are no_log as well, so that Ansible hides them in the
arguments it echoes when it refuses them (a `window` that is not a number) before this module runs; once
the module runs, a URL without credentials leaves the mask list (it is no secret, and the evidence may
name it).
"""

from __future__ import annotations

from ansible_collections.switchyard.release.plugins.module_utils.common.masking import (
    forget_short_masks,
    hidden_params,
    is_secret_header,
    mask_url,
    mask_url_credentials,
    url_credentials,
)

URL_OPTIONS = (("prometheus", "url"), ("http_probe", "url"), ("synthetic", "url"))


def protect(module, sources):
    """Set the module's mask list for the given sources; returns the invocation to echo."""
    headers = {
        name: value
        for source in ("http_probe", "synthetic")
        for name, value in ((sources.get(source) or {}).get("headers") or {}).items()
    }
    secret = {str(v) for k, v in headers.items() if is_secret_header(k)}
    forget_short_masks(module)
    for name, value in headers.items():
        if not is_secret_header(name) and str(value) not in secret:
            module.no_log_values.discard(str(value))
    shown = hidden_params(module.argument_spec, module.params)
    for source, option in URL_OPTIONS:
        url = (sources.get(source) or {}).get(option)
        if url:
            if not url_credentials(url):
                module.no_log_values.discard(url)
            mask_url_credentials(module, url, f"sources.{source}.{option}")
            shown["sources"][source] = {**shown["sources"][source], option: mask_url(url)}
    return {"module_args": shown}
