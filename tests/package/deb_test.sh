#!/usr/bin/env bash
# The Debian packages as an operator gets them: `cpack -G DEB` in the build
# directory, `dpkg -i` (then `apt-get -f install` for missing Depends), the
# files, the gangway user and both units checked (`systemd-analyze verify`
# on the installed units), then `dpkg -r` and `dpkg -P` leave nothing
# behind but the gangway user (which the test then removes, when it made it).
#
# Usage: deb_test.sh BUILD_DIR. Exits 77 (skipped) unless root, and on a
# machine that already has gangway installed or state in /var/lib/gangway*
# (a real deployment): it installs into / and purges.
set -euo pipefail
build=$(cd "$1" && pwd)
if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root (dpkg -i)"; exit 77; fi
for p in gangway gangway-coordinator gangway-agent; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q installed; then
    echo "SKIP: $p is installed here"; exit 77
  fi
done
if [ -e /var/lib/gangway ] || [ -e /var/lib/gangway-agent ] || [ -e /etc/gangway ]; then
  echo "SKIP: /var/lib/gangway* or /etc/gangway exists (a real deployment?)"; exit 77
fi

out=$(mktemp -d)
had_user=0
getent passwd gangway >/dev/null && had_user=1
cleanup() {
  dpkg -P gangway gangway-coordinator gangway-agent >/dev/null 2>&1 || true
  # The package leaves its user (as Debian does); the test does not: agents
  # run ranks as `gangway` when the account exists, and the other tests
  # expect this machine as it was.
  if [ "$had_user" = 0 ]; then userdel gangway >/dev/null 2>&1 || true; fi
  rm -rf "$out"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cpack -G DEB --config "$build/CPackConfig.cmake" -B "$out" >"$out/cpack.log" 2>&1 ||
  { cat "$out/cpack.log"; fail "cpack"; }
debs=("$out"/*.deb)
[ ${#debs[@]} -eq 3 ] || fail "expected 3 packages, got: ${debs[*]}"
for name in gangway gangway-coordinator gangway-agent; do
  deb=$(ls "$out"/${name}_*.deb) || fail "no package $name"
  depends=$(dpkg-deb -f "$deb" Depends)
  echo "$name Depends: $depends"
  # dpkg-shlibdeps found the shared libraries (gRPC at least).
  echo "$depends" | grep -q "libgrpc++" || fail "$name: Depends lacks libgrpc++: $depends"
  echo "$depends" | grep -q "libc6" || fail "$name: Depends lacks libc6: $depends"
done

# dpkg -i, then apt-get -f install semantics for any missing dependency.
if ! dpkg -i "${debs[@]}"; then
  DEBIAN_FRONTEND=noninteractive apt-get -f install -y -q -o DPkg::Lock::Timeout=120 ||
    fail "dependencies could not be installed"
fi
for p in gangway gangway-coordinator gangway-agent; do
  dpkg-query -W -f='${Status}\n' "$p" | grep -q "install ok installed" || fail "$p not installed"
done

for bin in gangway gangway-coordinator gangway-agent; do
  [ -x /usr/bin/$bin ] || fail "/usr/bin/$bin missing"
  /usr/bin/$bin --version | grep -q "^$bin [0-9]" || fail "$bin --version"
done
for f in /etc/gangway/coordinator.env /etc/gangway/agent.env \
  /usr/lib/systemd/system/gangway-coordinator.service \
  /usr/lib/systemd/system/gangway-agent.service /usr/share/doc/gangway/README.md; do
  [ -f "$f" ] || fail "$f missing"
done
getent passwd gangway | grep -q ":/var/lib/gangway:/usr/sbin/nologin$" ||
  fail "no gangway system user: $(getent passwd gangway || true)"
[ "$(id -u gangway)" -lt 1000 ] || fail "gangway is not a system user"
grep -q "^User=gangway$" /usr/lib/systemd/system/gangway-coordinator.service || fail "User="
if command -v systemd-analyze >/dev/null; then
  # Works without a booted systemd: it loads the unit files and checks
  # their syntax, the binaries they start, and their dependencies.
  for u in gangway-coordinator gangway-agent; do
    log=$(systemd-analyze verify /usr/lib/systemd/system/$u.service 2>&1) ||
      fail "systemd-analyze verify $u: $log"
    # verify exits 0 on some problems; any line naming our unit is one.
    if echo "$log" | grep -q "$u"; then fail "systemd-analyze verify $u: $log"; fi
  done
fi
# The binaries run from where the package put them, with its dependencies.
state=$(mktemp -d)
timeout 20 /usr/bin/gangway-agent --print-inventory --state "$state" | grep -q milliCpus ||
  fail "gangway-agent --print-inventory"
rm -rf "$state"

# dpkg -r keeps the configuration (conffiles); dpkg -P removes it.
echo "# changed by the administrator" >>/etc/gangway/agent.env
dpkg -r gangway gangway-coordinator gangway-agent
for bin in gangway gangway-coordinator gangway-agent; do
  [ ! -e /usr/bin/$bin ] || fail "/usr/bin/$bin left after dpkg -r"
done
[ ! -e /usr/lib/systemd/system/gangway-agent.service ] || fail "unit left after dpkg -r"
grep -q "changed by the administrator" /etc/gangway/agent.env || fail "dpkg -r lost the edited conffile"
dpkg -P gangway gangway-coordinator gangway-agent
[ ! -e /etc/gangway ] || fail "/etc/gangway left after dpkg -P: $(ls -la /etc/gangway)"
[ ! -e /var/lib/gangway ] || fail "/var/lib/gangway left after dpkg -P"
for p in gangway gangway-coordinator gangway-agent; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "installed"; then fail "$p still known"; fi
done
echo "PASS"
