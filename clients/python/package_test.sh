#!/usr/bin/env bash
# Tests the Python helper the way a user gets it: builds the presence-client
# wheel offline, installs it into a fresh virtual environment (with the
# system's site packages, for Debian's grpcio), and runs the tests with that
# environment's interpreter against the installed package, not this tree.
#
#   package_test.sh PACKAGE_DIR FILE... (runfiles paths; FILEs named *_test.py
#   are run, the others, such as the example, are only put beside them)
set -euo pipefail
runfiles="${RUNFILES_DIR:-$PWD/..}"
resolve() {
  if [ -e "$1" ]; then echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; else echo "$runfiles/$1"; fi
}
package_dir="$(resolve "$1")"
shift
files=()
for f in "$@"; do files+=("$(resolve "$f")"); done
junit="$(resolve bazel/unittest_junit.py)"
harness_dir="$(dirname "$(resolve clients/testing/harness.py)")"

work="${TEST_TMPDIR:-$(mktemp -d)}/package"
rm -rf "$work"
mkdir -p "$work/src" "$work/dist" "$work/run"
cp -rL "$package_dir/." "$work/src/"
chmod -R u+w "$work/src"
export HOME="$work" PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
/usr/bin/python3 -m pip wheel --no-deps --no-build-isolation --no-index \
  "$work/src" -w "$work/dist" >"$work/wheel.log" 2>&1 || { cat "$work/wheel.log"; exit 1; }
wheel="$(ls "$work"/dist/presence_client-*.whl)"
echo "built $(basename "$wheel")"
/usr/bin/python3 -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install --no-index "$wheel" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; exit 1; }
site="$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
export PRESENCE_CLIENT_SITE="$site"

# The tests and the example run from a directory holding only them: the
# package comes from the virtual environment, the harness from clients/testing.
tests=()
for f in "${files[@]}"; do
  cp "$f" "$work/run/"
  if [[ "$f" == *_test.py ]]; then tests+=("$work/run/$(basename "$f")"); fi
done
cd "$work/run"
export PYTHONPATH="$harness_dir"
exec "$work/venv/bin/python" "$junit" "${tests[@]}"
