# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Images before a release: each reference resolved once to the digest its registry serves, and that
digest verified (cosign signature, SBOM attestation) before anything is deployed."""
