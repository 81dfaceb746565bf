#!/usr/bin/env bash
# Builds the container image from deploy/Containerfile with buildah (vfs storage: no
# overlay mounts, no daemon) and checks what it holds: a static binary, CA certificates,
# a non-root user; then runs that binary from the mounted image, chrooted into it as the
# image's user, with a production configuration made by its own operator commands, and
# asserts /healthz and /readyz answer. Running the image as a container needs cgroups
# this machine does not give (podman stops there), so the image is run by hand:
# same files, same user, same entrypoint.
#
# The golang build stage needs a registry; when none answers, the binary is built on the
# host and the Containerfile's prebuilt stage copies it (BUILD_STAGE=prebuilt).
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d)"
# Storage of its own, removed at the end with everything a build leaves (intermediate
# stage images, working containers), and nothing of the machine's touched.
B=(buildah --storage-driver vfs --root "$work/storage" --runroot "$work/run")
tag="localhost/jetsocket-test:$$"
ctr=""
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  if [ -n "$ctr" ]; then "${B[@]}" umount "$ctr" >/dev/null 2>&1 || true; "${B[@]}" rm "$ctr" >/dev/null 2>&1 || true; fi
  "${B[@]}" rm -a >/dev/null 2>&1 || true
  "${B[@]}" rmi -a -f >/dev/null 2>&1 || true
  rm -rf "$work" .bin/container
}
trap cleanup EXIT
fail() { echo "container-test: FAIL: $*" >&2; exit 1; }

go_image="$(sed -n 's/^ARG GO_IMAGE=//p' deploy/Containerfile)"
if timeout 60 "${B[@]}" pull -q "$go_image" >/dev/null 2>&1; then
  stage=source
else
  stage=prebuilt
  echo "container-test: $go_image cannot be pulled here; building the static binary on the host (BUILD_STAGE=prebuilt)"
  mkdir -p .bin/container
  CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o .bin/container/jetsocket .
  cp /etc/ssl/certs/ca-certificates.crt .bin/container/
fi
echo "container-test: building the image ($(date +%T))"
"${B[@]}" bud -q --isolation chroot --build-arg BUILD_STAGE="$stage" -f deploy/Containerfile -t "$tag" . >/dev/null

# The image's configuration.
user="$("${B[@]}" inspect --type image --format '{{.OCIv1.Config.User}}' "$tag")"
entry="$("${B[@]}" inspect --type image --format '{{.OCIv1.Config.Entrypoint}}' "$tag")"
[ "$user" = "65532:65532" ] || fail "image user is '$user', want 65532:65532"
[ "$entry" = '[/jetsocket]' ] || fail "entrypoint is $entry"

ctr="$("${B[@]}" from -q "$tag")"
mnt="$("${B[@]}" mount "$ctr")"
# Nothing but the binary and the certificates: FROM scratch.
files="$(cd "$mnt" && find . -type f | sort | tr '\n' ' ')"
[ "$files" = "./etc/ssl/certs/ca-certificates.crt ./jetsocket " ] || fail "image files: $files"
grep -q 'BEGIN CERTIFICATE' "$mnt/etc/ssl/certs/ca-certificates.crt" || fail "no CA certificates"
readelf -l "$mnt/jetsocket" | grep -q 'INTERP' && fail "the binary is dynamically linked"

# The image's environment (APP_ENV=production ...), as a container runtime would set it,
# and nothing of this shell's.
mapfile -t image_env < <("${B[@]}" inspect --type image --format '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' "$tag" | sed '/^$/d')
printf '%s\n' "${image_env[@]}" | grep -qx 'APP_ENV=production' || fail "image env: ${image_env[*]}"
run_env=("${image_env[@]}")

# A production configuration, made with the image's own commands, in the image's root.
run_in() { env -i "${run_env[@]}" chroot --userspec=65532:65532 "$mnt" /jetsocket "$@"; }
mkdir -p "$mnt/etc/jetsocket"
chown 65532:65532 "$mnt/etc/jetsocket"
run_in secrets >"$work/secrets.env"
grep -q '^JWT_SECRET=' "$work/secrets.env" || fail "secrets printed no JWT_SECRET"
mapfile -t secrets < <(grep -v '^#' "$work/secrets.env")
run_env+=("${secrets[@]}" APP_ID=1 APP_KEY=container-test-key USERS_FILE=/etc/jetsocket/users.json)
printf 'container-test-password\n' | run_in users add -cost 10 -role admin ops >/dev/null
[ "$(stat -c '%a %u' "$mnt/etc/jetsocket/users.json")" = "600 65532" ] || fail "users file mode/owner: $(stat -c '%a %u' "$mnt/etc/jetsocket/users.json")"
run_in config check -production >"$work/check.txt" || { cat "$work/check.txt"; fail "config check"; }

port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
run_env+=("ADDR=127.0.0.1:$port")
env -i "${run_env[@]}" chroot --userspec=65532:65532 "$mnt" /jetsocket >"$work/server.log" 2>&1 &  # one process: env and chroot exec
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; fail "the server exited"; }
  sleep 0.1
done
health="$(curl -fsS "http://127.0.0.1:$port/healthz")" || { cat "$work/server.log"; fail "/healthz"; }
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || fail "/readyz"
# The user made above logs in: the users file written inside the image is the server's.
login="$(curl -sS -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
  -d '{"username":"ops","password":"container-test-password"}' "http://127.0.0.1:$port/login")"
[ "$login" = 200 ] || fail "login answered $login"
grep -q '"env":"production"' "$work/server.log" || { cat "$work/server.log"; fail "not in production mode"; }
echo "container-test: ok (BUILD_STAGE=$stage; /healthz: $health; image $(du -sh "$mnt" | cut -f1))"
