#!/usr/bin/env bash
# The version of this tree, from git tags (the Makefile and dist.sh call it).
#
#   packaging/version.sh           the version the binary reports
#   packaging/version.sh --pkg V   V as .deb/.rpm order it
#   packaging/version.sh --msi V   V as Windows Installer compares it (X.Y.Z)
#
# Releases are annotated tags vX.Y.Z. On one: "v0.3.0"; commits after it:
# "v0.3.0-5-gabc1234" (git describe). With no tag reachable, the base in
# the file VERSION (the release being prepared) as a pre-release of it:
# "v0.3.0-dev.195+abc1234" (commit count, commit). A tree with changes not
# committed adds "-dirty" (".dirty" after "+"). Without git at all:
# "v0.3.0-dev".
set -euo pipefail
cd "$(dirname "$0")/.."

version() {
	local v base dirty=""
	if v=$(git describe --tags --match 'v[0-9]*.[0-9]*.[0-9]*' --dirty 2>/dev/null); then
		echo "$v"
		return
	fi
	base=$(tr -d ' \t\r\n' <VERSION)
	base=${base#v}
	if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
		echo "v$base-dev"
		return
	fi
	[[ -z $(git status --porcelain --untracked-files=no 2>/dev/null) ]] || dirty=".dirty"
	echo "v$base-dev.$(git rev-list --count HEAD)+$(git rev-parse --short HEAD)$dirty"
}

# pkg_version turns a version into one dpkg and rpm order right:
# v1.2.0 -> 1.2.0, v1.2.0-3-gabc -> 1.2.0+3.gabc (after 1.2.0),
# v1.2.0-rc1 -> 1.2.0~rc1 and v1.2.0-dev.195+abc -> 1.2.0~dev.195+abc
# (before 1.2.0); -dirty -> .dirty.
pkg_version() {
	local v=${1#v} dirty=""
	if [[ $v == *-dirty ]]; then dirty=".dirty"; v=${v%-dirty}; fi
	if [[ $v =~ ^([0-9]+\.[0-9]+\.[0-9]+)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		echo "${BASH_REMATCH[1]}+${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}$dirty"
	elif [[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
		echo "$v${dirty:++dirty}"
	elif [[ $v =~ ^([0-9]+\.[0-9]+\.[0-9]+)-([0-9A-Za-z.]+)(\+[0-9A-Za-z.]+)?$ ]]; then
		echo "${BASH_REMATCH[1]}~${BASH_REMATCH[2]}${BASH_REMATCH[3]}$dirty"
	else
		echo "unusable version $1: want vX.Y.Z[-...]" >&2
		return 1
	fi
}

# msi_version is the X.Y.Z Windows Installer compares (X, Y < 256, Z <
# 65536): a dev build of 1.2.0 is 1.2.0 too, which the .msi replaces like
# any same version.
msi_version() {
	local v=${1#v}
	if [[ $v =~ ^([0-9]+\.[0-9]+\.[0-9]+) ]]; then
		echo "${BASH_REMATCH[1]}"
	else
		echo "unusable version $1: want vX.Y.Z[-...]" >&2
		return 1
	fi
}

case ${1:-} in
"") version ;;
--pkg) pkg_version "$2" ;;
--msi) msi_version "$2" ;;
*) echo "usage: packaging/version.sh [--pkg V | --msi V]" >&2; exit 2 ;;
esac
