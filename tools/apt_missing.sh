# Sourced by tools/setup.sh and tools/ci_sanitize.sh: apt_missing TAG PACKAGE... installs those of
# the Debian packages that are not installed yet (with sudo when not root), saying which.
apt_missing() {
  local tag=$1 p
  shift
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  echo "$tag: installing ${missing[*]}" >&2
  local sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}
