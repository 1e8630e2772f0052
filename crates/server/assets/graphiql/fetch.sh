#!/usr/bin/env bash
# Fetches GraphiQL and React from the npm registry at the pinned versions below, checks the tarballs
# against their pinned integrity and the extracted files against SHA256SUMS, and copies them here. The
# server embeds these files (crates/server/src/graphiql.rs), so GraphiQL needs no network at run time.
# Needs npm (Debian: npm) and access to the npm registry; the build and the tests need none of this.
#
#   crates/server/assets/graphiql/fetch.sh           # the pinned versions again: files come out identical
#
# To move to new versions: change the versions, run with --update (it reports each new integrity to pin
# instead of failing, and rewrites SHA256SUMS), pin the integrities, change the file names in graphiql.rs.
set -euo pipefail

GRAPHIQL_VERSION=3.9.0
REACT_VERSION=18.3.1
# dist.integrity of each tarball as the registry publishes it (npm view <pkg>@<version> dist.integrity).
GRAPHIQL_INTEGRITY=sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA==
REACT_INTEGRITY=sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ==
REACT_DOM_INTEGRITY=sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw==

update=false
case "${1:-}" in
  "") ;;
  --update) update=true ;;
  *) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Packs one package into $work and checks its tarball against the pinned integrity.
pack() {
  local spec="$1" integrity="$2" tarball
  tarball="$(cd "$work" && npm pack --silent "$spec")"
  local actual
  actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
  if [[ "$actual" != "$integrity" ]]; then
    if $update; then
      echo "$spec: integrity is now $actual (put it in the pins)" >&2
    else
      echo "$spec: integrity $actual, pinned $integrity" >&2
      exit 1
    fi
  fi
  mkdir -p "$work/$spec"
  tar -xzf "$work/$tarball" -C "$work/$spec"
}

pack "graphiql@$GRAPHIQL_VERSION" "$GRAPHIQL_INTEGRITY"
pack "react@$REACT_VERSION" "$REACT_INTEGRITY"
pack "react-dom@$REACT_VERSION" "$REACT_DOM_INTEGRITY"

g="$work/graphiql@$GRAPHIQL_VERSION/package"
r="$work/react@$REACT_VERSION/package"
d="$work/react-dom@$REACT_VERSION/package"
cp "$g/graphiql.min.js" "$here/graphiql-$GRAPHIQL_VERSION.min.js"
cp "$g/graphiql.min.css" "$here/graphiql-$GRAPHIQL_VERSION.min.css"
cp "$g/LICENSE" "$here/LICENSE-graphiql"
cp "$r/umd/react.production.min.js" "$here/react-$REACT_VERSION.production.min.js"
cp "$r/LICENSE" "$here/LICENSE-react"
cp "$d/umd/react-dom.production.min.js" "$here/react-dom-$REACT_VERSION.production.min.js"

cd "$here"
if $update; then
  sha256sum ./*.min.js ./*.min.css | sed 's# \./# #' >SHA256SUMS
  echo "SHA256SUMS rewritten"
else
  sha256sum --check --quiet SHA256SUMS
  echo "the files match SHA256SUMS"
fi
