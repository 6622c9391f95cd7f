#!/usr/bin/env bash
# Run the tests marked `compat` against several bpy wheels, each in its own venv under .venv-compat/bpy-<version>,
# and print one summary line per version. Usage: scripts/compat_bpy.sh [VERSION ...] (default: 4.2.0 4.5.15 5.0.1).
# Each wheel is 300-400 MB; a venv is created once and reused. Extra pytest arguments: COMPAT_PYTEST_ARGS="...".
# Exit status: 0 only if every version passed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

PYTHON="${PYTHON:-python3.11}"
versions=("$@")
[ "${#versions[@]}" -gt 0 ] || versions=(4.2.0 4.5.15 5.0.1)
# Word splitting of the extra arguments is intended.
read -r -a extra_args <<<"${COMPAT_PYTEST_ARGS:-}"

declare -A status summary seconds
for ver in "${versions[@]}"; do
  venv=".venv-compat/bpy-$ver"
  log="$venv/pytest.log"
  stamp="$venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    echo "compat: preparing $venv"
    if ! { [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"; } ||
      ! "$venv/bin/python" -m pip install -q --disable-pip-version-check "bpy==$ver" pytest pytest-timeout ||
      ! "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$here"; then
      status[$ver]="SETUP FAILED"
      summary[$ver]="see the pip output above"
      seconds[$ver]="-"
      continue
    fi
    rm -f "$venv"/.installed-*
    touch "$stamp"
  fi
  echo "compat: bpy $ver: running pytest -m compat (log: $log)"
  start=$(date +%s)
  "$venv/bin/python" -m pytest -m compat -q -p no:cacheprovider "${extra_args[@]}" >"$log" 2>&1
  rc=$?
  seconds[$ver]=$(($(date +%s) - start))
  # pytest's last line, e.g. "5 passed in 9.16s" or "1 failed, 4 passed in 12.3s".
  summary[$ver]="$(grep -E '^=*.*(passed|failed|error|no tests ran)' "$log" | tail -n1 | tr -d '=' | sed 's/^ *//')"
  case $rc in
    0) status[$ver]="PASS" ;;
    5) status[$ver]="NO TESTS" ;;
    *) status[$ver]="FAIL (rc $rc)"; tail -n 30 "$log" ;;
  esac
done

echo
printf '%-10s %-14s %-8s %s\n' "bpy" "result" "seconds" "pytest"
failed=0
for ver in "${versions[@]}"; do
  printf '%-10s %-14s %-8s %s\n' "$ver" "${status[$ver]}" "${seconds[$ver]}" "${summary[$ver]}"
  [ "${status[$ver]}" = "PASS" ] || failed=1
done
exit $failed
