#!/usr/bin/env bash
# Build bundles/busybox/rootfs from Debian's busybox-static: one static binary, its applet links
# and the usual empty directories. Idempotent; needs only apt (no other network).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rootfs=${1:-$here/rootfs}
bb=/bin/busybox
if ! dpkg -s busybox-static >/dev/null 2>&1; then
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null
fi
# done already, unless by an older version of this script (absolute applet links)
if [ -f "$rootfs/bin/busybox" ] && [ "$(readlink "$rootfs/bin/sh")" = ../bin/busybox ]; then exit 0; fi
tmp="$rootfs.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,home,run,var/tmp,mnt,opt}
chmod 1777 "$tmp/tmp" "$tmp/var/tmp"
cp "$bb" "$tmp/bin/busybox"
# relative links to the rootfs's own copy (usr/bin/top -> ../../bin/busybox), never to /bin/busybox:
# a host-side write through the rootfs (cp x rootfs/bin/top) must land in the rootfs, and an
# absolute link would resolve to the host's binary
for applet in $("$bb" --list-full); do
    [ "$applet" = bin/busybox ] && continue
    up=${applet//[!\/]/}          # one "../" for each directory level of the applet's path
    ln -sf "${up//\//../}bin/busybox" "$tmp/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$tmp/etc/passwd"
echo 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >> "$tmp/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$tmp/etc/group"
echo 'pyrunc' > "$tmp/etc/hostname"
rm -rf "$rootfs"
mv "$tmp" "$rootfs"
