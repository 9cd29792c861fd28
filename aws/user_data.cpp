#include "aws/user_data.h"

#include <algorithm>

#include "base/error.h"
#include "base/hash.h"
#include "base/text_escape.h"

namespace kb::aws {

namespace {

// The script after its values. Kept in one piece so that it reads as the shell script it is.
// - Only https (curl --proto =https --tlsv1.2); curl's own CURL_CA_BUNDLE / SSL_CERT_FILE decide
//   which CAs it trusts, so tests point it at their CA without any insecure switch here.
// - "Not published yet" is S3's 404 NoSuchKey, or 403 AccessDenied when the signer may not list
//   the bucket: retried. An expired URL (403 AccessDenied "Request has expired"), a wrong
//   signature (403 SignatureDoesNotMatch), any other 4xx and TLS certificate errors are final.
// - The installer is hashed as it lands, before it is moved, made executable or run; other bytes
//   are deleted and waited past like a missing object.
// - Logs name the object (its label), never the URL: its query string is a credential.
constexpr const char* kBody = R"SH(set -u
umask 077
dir=/var/lib/kbundle/incoming
bin=/usr/local/bin/kbundle-installer
start=$(date +%s)

log() {
  printf 'kbundle-boot: %s\n' "$*" >&2
  logger -t kbundle-boot -- "$*" 2>/dev/null || true
}
give_up() {
  log "FAILED: node $node of cluster $cluster was not installed: $*"
  exit 1
}
# The text of one S3 error element (<Code>, <Message>) of the answer in $1, printable and short.
s3_field() {
  sed -n "s:.*<$2>\([^<]*\)</$2>.*:\1:p" "$1" 2>/dev/null | head -n 1 | tr -cd '[:print:]' | cut -c 1-160
}

# fetch URL LABEL FILE [SHA256]: downloads URL into FILE (0600), waiting while it is not published
# yet. With SHA256, a download with other bytes is deleted unrun and waited past too (an older
# upload may sit at the key until `kbundle publish` replaces it).
fetch() {
  try=0
  delay=$KB_BOOT_DELAY
  while :; do
    try=$((try + 1))
    rm -f "$3.part"
    code=$(curl --proto =https --tlsv1.2 -sS --connect-timeout 10 --speed-limit 1024 --speed-time 60 -o "$3.part" -w '%{http_code}' "$1" 2>"$dir/curl.err")
    rc=$?
    final=
    if [ "$rc" = 0 ] && [ "$code" = 200 ]; then
      got=
      [ -z "${4:-}" ] || got=$(sha256sum "$3.part" | cut -d ' ' -f 1)
      if [ "$got" = "${4:-}" ]; then
        mv -f "$3.part" "$3" || give_up "cannot write $3"
        log "$2: fetched (try $try)"
        return 0
      fi
      what="sha256 $got is not $4, the one kbundle aws up pinned; not run (publish the kbundle-installer that aws up was given)"
    else
      s3code=$(s3_field "$3.part" Code)
      s3msg=$(s3_field "$3.part" Message)
      case "$rc:$code:$s3code" in
        0:404:*) what="not published yet (HTTP 404 $s3code)" ;;
        0:403:AccessDenied)
          case "$s3msg" in
            *xpired*) final="the URL has expired (HTTP 403 AccessDenied: $s3msg; it was valid until $urls_expire)" ;;
            *) what="not published yet, or not readable (HTTP 403 AccessDenied: $s3msg)" ;;
          esac ;;
        0:403:SignatureDoesNotMatch) final="the URL's signature does not match (HTTP 403 SignatureDoesNotMatch): the URL was changed, or is not for this object" ;;
        0:408:* | 0:429:* | 0:5??:*) what="S3 answered HTTP $code $s3code" ;;
        0:*) final="HTTP $code $s3code: $s3msg" ;;
        1:*) final="curl refused the URL (https only)" ;;
        51:* | 58:* | 60:* | 77:* | 83:*) final="TLS: $(tr -cd '[:print:]' <"$dir/curl.err" | sed 's/?[^ ]*//g' | cut -c 1-200)" ;;
        *) what="$(tr -cd '[:print:]' <"$dir/curl.err" | sed 's/?[^ ]*//g' | cut -c 1-200)" ;;
      esac
    fi
    rm -f "$3.part"
    [ -z "$final" ] || give_up "$2: $final; not retried"
    left=$((start + KB_BOOT_DEADLINE - $(date +%s)))
    [ "$left" -gt 0 ] || give_up "$2: $what; gave up after $KB_BOOT_DEADLINE s (KB_BOOT_DEADLINE). Publish it (kbundle publish --to ...) and run this script again as root"
    [ "$delay" -le "$left" ] || delay=$left
    log "$2: $what; try $try, next in $delay s (gives up in $left s)"
    sleep "$delay"
    delay=$((delay * 2))
    [ "$delay" -le "$KB_BOOT_MAX_DELAY" ] || delay=$KB_BOOT_MAX_DELAY
  done
}

mkdir -p "$dir" && chmod 0700 "$dir" || give_up "cannot create $dir"
log "node $node of cluster $cluster: installing its bundle; waits up to $KB_BOOT_DEADLINE s for it to be published"
if [ -n "$installer_url" ]; then
  fetch "$installer_url" "$installer_name" "$dir/kbundle-installer" "$installer_sha256"
  mkdir -p "${bin%/*}" && cp "$dir/kbundle-installer" "$bin.new" && chmod 0755 "$bin.new" && mv -f "$bin.new" "$bin" ||
    give_up "cannot install $bin"
  rm -f "$dir/kbundle-installer"
  log "installed $bin (sha256 $installer_sha256)"
elif [ ! -x "$bin" ]; then
  give_up "$bin is not there and no installer URL is set (aws.userData.installerURL)"
fi
fetch "$bundle_url" "$bundle_name" "$dir/$node.kbundle"
printf '%s\n' "$signing_pub" >"$dir/bundle-signing.pub" || give_up "cannot write $dir/bundle-signing.pub"
log "applying $node.kbundle, pinned to signing key sha256:$fingerprint"
"$bin" apply --trust-fingerprint "sha256:$fingerprint" "$dir/$node.kbundle"
rc=$?
if [ "$rc" = 6 ]; then
  # Installed and healthy; only the cluster's bootstrap objects are still to do (docs/bootstrap.md).
  log "FAILED: node $node of cluster $cluster installed its bundle, but the bootstrap objects were not applied: run kbundle-installer bootstrap (see kbundle-installer status)"
  exit 6
fi
[ "$rc" = 0 ] || give_up "kbundle-installer apply exited $rc (its messages are above; see kbundle-installer status)"
log "done: node $node of cluster $cluster installed its bundle"
)SH";

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

void check_text(const std::string& what, const std::string& value) {
  if (has_control(value)) throw Error("user data: " + what + " holds a control character: " + escape_text(value));
}

void check_url(const std::string& what, const std::string& url) {
  check_text(what, url);
  if (!url.starts_with("https://") || url.size() <= 8)
    throw Error("user data: " + what + " '" + escape_text(url_without_query(url)) +
                "' is not an https:// URL (hint: bundles hold private keys; AWS_ENDPOINT_URL_S3 must be https too)");
}

}  // namespace

std::string url_without_query(const std::string& url) { return url.substr(0, url.find_first_of("?#")); }

std::string render_user_data(const UserDataInput& in) {
  check_text("the cluster name", in.cluster);
  check_text("the node name", in.node);
  if (in.node.empty() || in.node == "." || in.node == ".." || in.node.find('/') != std::string::npos)
    throw Error("user data: node name " + escape_text(in.node) + " is not a file name");
  check_url("the bundle URL", in.bundle.url);
  check_text("the bundle's label", in.bundle.label);
  if (!in.installer.url.empty()) {
    check_url("the installer URL", in.installer.url);
    check_text("the installer's label", in.installer.label);
    if (!is_lower_hex(in.installer_sha256, 64))
      throw Error("user data: the installer's sha256 '" + escape_text(in.installer_sha256) + "' is not 64 lowercase hex digits");
  }
  if (!is_lower_hex(in.signing_fingerprint, 64))
    throw Error("user data: the signing key fingerprint '" + escape_text(in.signing_fingerprint) +
                "' is not 64 lowercase hex digits");
  if (!in.signing_public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"))
    throw Error("user data: the signing public key is not a PEM public key");
  check_text("the expiry", in.urls_expire);

  std::string pem = in.signing_public_key_pem;
  while (!pem.empty() && pem.back() == '\n') pem.pop_back();
  auto var = [](const char* name, const std::string& value) { return std::string(name) + "=" + shell_quote(value) + "\n"; };
  std::string s =
      "#!/bin/sh\n"
      "# kbundle first boot, written by `kbundle aws up` (docs/aws.md, \"User data\"): fetch this node's\n"
      "# bundle over https, check the installer's sha256, apply the bundle pinned to the signing key.\n"
      "# The wait for the bundle to be published (seconds); tests shorten it by editing this line.\n"
      "KB_BOOT_DEADLINE=1800\n"
      "KB_BOOT_DELAY=5\n"
      "KB_BOOT_MAX_DELAY=60\n";
  s += var("cluster", in.cluster);
  s += var("node", in.node);
  s += var("bundle_url", in.bundle.url);
  s += var("bundle_name", in.bundle.label);
  s += var("installer_url", in.installer.url);
  s += var("installer_name", in.installer.label);
  s += var("installer_sha256", in.installer.url.empty() ? "" : in.installer_sha256);
  s += var("fingerprint", in.signing_fingerprint);
  s += var("urls_expire", in.urls_expire.empty() ? "never" : in.urls_expire);
  s += var("signing_pub", pem);
  s += "# end of values\n";
  s += kBody;
  if (s.size() > kUserDataLimit)
    throw Error("user data for node " + escape_text(in.node) + " is " + std::to_string(s.size()) +
                " bytes, over AWS's limit of " + std::to_string(kUserDataLimit) +
                " (hint: shorter URLs: a shorter bucket prefix, or long-lived credentials without a session token)");
  return s;
}

}  // namespace kb::aws
