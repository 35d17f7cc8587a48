#!/usr/bin/env bash
# Builds the release files into $OUT (default dist/): binaries for
# linux/amd64, linux/arm64 and windows/amd64, tar.gz and zip archives, .deb
# and .rpm (nfpm), an .msi (wixl) and SHA256SUMS. "make dist" runs it with
# VERSION (git describe) and LDFLAGS from the Makefile.
#
# Environment: VERSION, LDFLAGS, OUT, PLATFORMS (default all three),
# FORMATS (default "tar zip deb rpm msi sums"), NFPM (an nfpm binary; built
# once into ~/.cache/shopbridge-tools otherwise), EXTRA_LDFLAGS (appended to
# LDFLAGS, for test builds only, e.g. packaging/test.sh's schema-3 package;
# never set for a release).
# Needs: go, tar, gzip, zip, sha256sum, wixl for the .msi: `make tools`
# installs what is missing (packaging/apt-packages.txt); dist.sh names any
# missing tool before it builds.
set -euo pipefail

cd "$(dirname "$0")/.."
VERSION=${VERSION:-$(packaging/version.sh)}
COMMIT=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo none)}
BUILD_DATE=${BUILD_DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}
LDFLAGS=${LDFLAGS:--s -w -X github.com/shopbridge/shopbridge.Version=$VERSION -X github.com/shopbridge/shopbridge.Commit=$COMMIT -X github.com/shopbridge/shopbridge.BuildDate=$BUILD_DATE}
if [[ -n ${EXTRA_LDFLAGS:-} ]]; then
	echo "dist: test build, EXTRA_LDFLAGS=$EXTRA_LDFLAGS (not for release)" >&2
	LDFLAGS="$LDFLAGS $EXTRA_LDFLAGS"
fi
OUT=${OUT:-dist}
PLATFORMS=${PLATFORMS:-linux/amd64 linux/arm64 windows/amd64}
FORMATS=${FORMATS:-tar zip deb rpm msi sums}
NFPM_VERSION=v2.45.2
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

has() { [[ " $FORMATS " == *" $1 "* ]]; }

# Every tool the chosen formats need, checked before anything is built, each
# with the package that brings it (packaging/apt-packages.txt; make tools).
need=(go:golang tar:tar gzip:gzip sha256sum:coreutils git:git)
has zip && need+=(zip:zip)
has msi && [[ " $PLATFORMS " == *" windows/amd64 "* ]] && need+=(wixl:wixl)
missing=0
for t in "${need[@]}"; do
	tool=${t%%:*} pkg=${t#*:}
	if ! command -v "$tool" >/dev/null 2>&1; then
		if [[ $tool == go ]]; then
			echo "dist: go not found: install Go 1.26 (see README: Quick start)" >&2
		else
			echo "dist: $tool not found: run make tools (or apt-get install $pkg)" >&2
		fi
		missing=1
	fi
done
[[ $missing == 0 ]] || exit 1

# The package versions (packaging/version.sh): v0.3.0 -> 0.3.0, a dev build
# v0.3.0-dev.195+abc -> 0.3.0~dev.195+abc (before 0.3.0); the .msi's X.Y.Z.
PKG_VERSION=${PKG_VERSION:-$(packaging/version.sh --pkg "$VERSION")}
MSI_VERSION=${MSI_VERSION:-$(packaging/version.sh --msi "$VERSION")}
echo "dist: version $VERSION, packages $PKG_VERSION, msi $MSI_VERSION -> $OUT/"

nfpm() {
	if [[ -z ${NFPM:-} ]]; then
		local dir=${XDG_CACHE_HOME:-$HOME/.cache}/shopbridge-tools/nfpm-$NFPM_VERSION
		if [[ ! -x $dir/nfpm ]]; then
			mkdir -p "$dir"
			GOBIN=$dir CGO_ENABLED=0 go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$NFPM_VERSION"
		fi
		NFPM=$dir/nfpm
	fi
	"$NFPM" "$@"
}

mkdir -p "$OUT"
OUT=$(realpath "$OUT")
# The binaries and staging directories live outside $OUT and go at exit:
# $OUT holds only the release files and SHA256SUMS.
build=$(mktemp -d "${TMPDIR:-/tmp}/shopbridge-dist.XXXXXX")
trap 'rm -rf "$build"' EXIT
rm -rf "$OUT/build" # left by dist.sh before it built outside $OUT
for p in $PLATFORMS; do
	os=${p%/*} arch=${p#*/}
	exe=shopbridge
	[[ $os == windows ]] && exe=shopbridge.exe
	name=shopbridge_${PKG_VERSION}_${os}_${arch}
	dir=$build/$name
	mkdir -p "$dir"
	echo "dist: build $os/$arch"
	GOOS=$os GOARCH=$arch CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS" -o "$dir/$exe" ./cmd/shopbridge
	cp packaging/shopbridge.toml "$dir/"
	# For a chain's Prometheus and Grafana; nfpm.yaml and shopbridge.wxs
	# list the same files.
	mkdir -p "$dir/monitoring"
	cp packaging/monitoring/{prometheus.yml,shops.yml,shopbridge-alerts.yml,grafana-fleet.json,grafana-shop.json} "$dir/monitoring/"
	cp docs/monitoring.md "$dir/monitoring/README.md"
	# The installer's guide in both languages and the documents it links.
	cp README.md README.ru.md "$dir/"
	mkdir -p "$dir/docs"
	cp docs/*.md "$dir/docs/"
	if [[ $os == linux ]]; then
		cp packaging/systemd/shopbridge.service "$dir/"
		if has tar; then
			tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
				-C "$build" -cf - "$name" | gzip -9n >"$OUT/$name.tar.gz"
		fi
		for fmt in deb rpm; do
			has $fmt || continue
			sed -e "s|\${GOARCH}|$arch|g" -e "s|\${PKG_VERSION}|$PKG_VERSION|g" -e "s|\${BINARY}|$dir/$exe|g" \
				packaging/nfpm.yaml >"$build/nfpm-$arch.yaml"
			nfpm package --config "$build/nfpm-$arch.yaml" --packager $fmt --target "$OUT/" >/dev/null
		done
	else
		# Windows users open the config in Notepad.
		sed 's/$/\r/' packaging/shopbridge.toml >"$dir/shopbridge.toml"
		if has zip; then
			rm -f "$OUT/$name.zip"
			(cd "$build" && find "$name" -exec touch -d "@$SOURCE_DATE_EPOCH" {} + && zip -qrX9 - "$name") >"$OUT/$name.zip"
		fi
		if has msi && [[ $arch == amd64 ]]; then
			# wixl wants the sources relative to where it runs.
			wxs=$(realpath packaging/windows/shopbridge.wxs)
			(cd "$dir" && wixl -a x64 -D Version="$MSI_VERSION" -D UpgradeMax="${MSI_VERSION%.*}.$((${MSI_VERSION##*.} + 1))" -D SourceDir=. -o "$OUT/shopbridge_${PKG_VERSION}_windows_amd64.msi" "$wxs")
		fi
	fi
done

if has sums; then
	(cd "$OUT" && rm -f SHA256SUMS && sha256sum -- *.tar.gz *.zip *.deb *.rpm *.msi 2>/dev/null >SHA256SUMS || true)
fi
ls -l "$OUT"
