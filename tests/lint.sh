#!/usr/bin/env bash
# Static checks, run by `make lint` (which creates .venv first): ruff, antsibull-changelog,
# ansible-test sanity and ansible-lint (production profile). Stops at the first failing tool.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

step() { printf '\n=== %s\n' "$*"; }

step ruff
dirs=()
for d in plugins tests examples benchmarks; do [[ -d $d ]] && dirs+=("$d"); done
ruff check "${dirs[@]}"

step antsibull-changelog
antsibull-changelog lint
antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

# ansible-test and ansible-lint need the collection to sit physically at
# .../ansible_collections/switchyard/release (ansible-test resolves symlinks, so
# build/collections/... is not enough). Copy what git sees: tracked files plus untracked
# files that are not ignored; rebuilt on every run so nothing stale remains.
# The copy gets its own empty git repository: otherwise ansible-test walks up to this
# checkout's .git, asks it for the files under build/ (ignored) and finds none
# ("All targets skipped"). With it, the copy's .gitignore also hides ansible-lint's .ansible/.
copy=build/sanity/ansible_collections/switchyard/release
rm -rf build/sanity
mkdir -p "$copy"
git ls-files -z -co --exclude-standard |
    tar --null --files-from=- --ignore-failed-read -cf - | tar -C "$copy" -xf -
git init --quiet "$copy"

# ansible-test bootstraps pip in its sanity virtual environments with a get-pip script it
# downloads from ci-files.testing.ansible.com, which is unreachable here. It uses a cached copy
# when one exists, so put a stand-in there that installs pip from the wheel bundled with
# ensurepip. The name carries the pip version ansible-test asks for (get_venv_packages()).
pip_ver=$(python -c 'from types import SimpleNamespace as N
from ansible_test._internal.python_requirements import get_venv_packages as g
print(g(N(version="3.11"))["pip"])')
get_pip=~/.ansible/test/cache/get_pip_${pip_ver//./_}.py
if [[ ! -s $get_pip ]]; then
    mkdir -p "$(dirname "$get_pip")"
    cat > "$get_pip" <<'EOF'
# Stand-in for ansible-test's get-pip download (written by switchyard.release tests/lint.sh):
# installs pip from the wheel bundled with ensurepip; get-pip's arguments are ignored.
import ensurepip, glob, os, subprocess, sys
wheel = sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl")))[-1]
subprocess.check_call([sys.executable, os.path.join(wheel, "pip"), "install", "--quiet", "--no-index",
                       "--disable-pip-version-check", wheel])
EOF
fi

# Use the copy's ansible.cfg, not the checkout's one that `make` exports.
unset ANSIBLE_CONFIG

step ansible-test sanity
(cd "$copy" && ansible-test sanity --python 3.11)

# ansible-lint installs the collection into the copy's .ansible/ (git-ignored, and written after
# ansible-test has listed its files). No --offline: with it, the collection's own modules fail
# syntax-check[unknown-module]. galaxy.yml's dependencies are already satisfied by the `ansible`
# package in .venv, so ansible-lint's `ansible-galaxy collection install` fetches nothing.
step ansible-lint
(cd "$copy" && ansible-lint)

step 'lint: all passed'
