"""Build a one-layer OCI image archive (oci-layout tar) from a rootfs dir, for `ctr images import`."""
import hashlib
import io
import json
import os
import tarfile
import time


def _blob(tar, data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo("blobs/sha256/" + digest.split(":")[1])
    info.size = len(data)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def _file(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def build(rootfs, out_path, ref="latest", cmd=("sh",)):
    """Write an OCI archive of ROOTFS to OUT_PATH with one manifest named REF (org.opencontainers.image.ref.name)."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as lt:
        for name in sorted(os.listdir(rootfs)):
            lt.add(os.path.join(rootfs, name), arcname=name)
    layer = layer_buf.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine),
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": list(cmd)},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    with tarfile.open(out_path, "w") as tar:
        _file(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        cdesc = _blob(tar, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json")
        ldesc = _blob(tar, layer, "application/vnd.oci.image.layer.v1.tar")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": cdesc, "layers": [ldesc]}
        mdesc = _blob(tar, json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
        mdesc["annotations"] = {"org.opencontainers.image.ref.name": ref}
        index = {"schemaVersion": 2, "manifests": [mdesc]}
        _file(tar, "index.json", json.dumps(index).encode())
    return out_path
