# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a module shows of the secrets it was given.

Ansible hides a no_log option by replacing each of its values wherever it appears in the result
(`module.no_log_values`). That mask list must not hold values too short to mask (they garble every
word, see common/secrets.py), yet a short secret must not show in the echoed arguments either: so the
invocation is rebuilt with every no_log option hidden whatever its length, and the short values are
dropped from the list. A URL keeps its credentials out of sight the same way: hidden in what is
echoed (`https://user:****@host`) and, when long enough, masked in everything else.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from ansible_collections.switchyard.release.plugins.module_utils.common.secrets import MIN_MASKED_LENGTH, mask

HIDDEN = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"  # what Ansible itself shows for a no_log option
MASK = "****"

# Request headers that carry credentials: a name (any case) containing one of these words - Authorization,
# Proxy-Authorization, Cookie, X-Api-Key, Ocp-Apim-Subscription-Key, X-Functions-Key, X-Auth-Token... Broad on
# purpose: masking a header that is no secret costs little, showing one that is costs the secret.
SECRET_HEADER_WORDS = (
    "authorization",
    "cookie",
    "token",
    "secret",
    "password",
    "passwd",
    "key",
    "auth",
    "session",
    "signature",
    "credential",
)
SECRET_HEADER_RE = re.compile("|".join(SECRET_HEADER_WORDS), re.I)


def is_secret_header(name):
    return bool(SECRET_HEADER_RE.search(str(name)))


def url_credentials(url):
    """The secrets in a URL's userinfo: the password, or the user alone when there is no password
    (`https://TOKEN@host`); as written and percent-decoded."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return []
    if "@" not in parts.netloc:
        return []
    userinfo = parts.netloc.rsplit("@", 1)[0]
    user, sep, password = userinfo.partition(":")
    secret = password if sep else user
    return [s for s in dict.fromkeys((secret, unquote(secret))) if s]


# The userinfo of a URL inside any text: //user:password@ or //token@ (up to the last @ before the first /
# or blank, as urlsplit reads it: a password with an unencoded @ is masked whole).
USERINFO_RE = re.compile(r"//([^/\s]*)@")


def masked_userinfo(match):
    user, sep, _password = match.group(1).partition(":")
    return f"//{user}:{MASK}@" if sep else f"//{MASK}@"


def mask_url(url):
    """The URL with the secret of its userinfo replaced: https://user:****@host, https://****@host."""
    return USERINFO_RE.sub(masked_userinfo, str(url), count=1)


def scrub(text, secrets):
    """text (an error message) with the userinfo of every URL in it masked, and each of secrets wherever
    it appears (when long enough to be masked without garbling the text)."""
    text = USERINFO_RE.sub(masked_userinfo, str(text))
    for secret in sorted(secrets, key=len, reverse=True):  # the longest first: a decoded one may be inside
        if len(secret) >= MIN_MASKED_LENGTH:
            text = text.replace(secret, MASK)
    return text


def scrub_url(text, url):
    """text with the userinfo of every URL in it and the credentials of url masked (see scrub)."""
    return scrub(text, url_credentials(url))


def mask_url_credentials(module, url, option):
    """Mask the URL's credentials in the whole result (long enough ones; see common/secrets.py)."""
    for secret in url_credentials(url):
        mask(module, secret, option)


def hidden_params(argument_spec, params):
    """A copy of params with every no_log option hidden (a dict keeps its keys), whatever the length of
    its values, walking suboptions; what the module echoes as its invocation."""
    shown = dict(params)
    for name, spec in argument_spec.items():
        value = params.get(name)
        if value in (None, "", [], {}):
            continue
        if spec.get("no_log"):
            shown[name] = {k: HIDDEN for k in value} if isinstance(value, dict) else HIDDEN
        elif spec.get("options"):
            if isinstance(value, dict):
                shown[name] = hidden_params(spec["options"], value)
            elif isinstance(value, list):
                shown[name] = [hidden_params(spec["options"], v) if isinstance(v, dict) else v for v in value]
    return shown


def forget_short_masks(module, keep=()):
    """Drop from the mask list what is too short to mask without garbling the output, unless in keep."""
    for value in list(module.no_log_values):
        if len(value) < MIN_MASKED_LENGTH and value not in keep:
            module.no_log_values.discard(value)
