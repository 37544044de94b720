# An OCI layout of one image with four layers of 256 MiB of random bytes each (gzip level 1,
# so nothing inflates): what a pull's peak RSS is measured on, as it must not grow with the
# image. Usage: python3 benches/registry_big.py DIR
import os, sys, tarfile, gzip, hashlib, json, io
root = sys.argv[1]; os.makedirs(root+'/blobs/sha256', exist_ok=True)
def put(b):
    d=hashlib.sha256(b).hexdigest(); open(f'{root}/blobs/sha256/{d}','wb').write(b); return 'sha256:'+d
layers=[]; diffs=[]
for i in range(4):
    tb=io.BytesIO()
    with tarfile.open(fileobj=tb, mode='w', format=tarfile.PAX_FORMAT) as t:
        for j in range(4):
            data=os.urandom(64<<20)
            ti=tarfile.TarInfo(f'layer{i}/file{j}'); ti.size=len(data); ti.mode=0o644
            t.addfile(ti, io.BytesIO(data))
    raw=tb.getvalue(); diffs.append('sha256:'+hashlib.sha256(raw).hexdigest())
    gz=gzip.compress(raw, compresslevel=1, mtime=0)
    layers.append({'mediaType':'application/vnd.oci.image.layer.v1.tar+gzip','digest':put(gz),'size':len(gz)})
cfg=json.dumps({'architecture':'amd64','os':'linux','rootfs':{'type':'layers','diff_ids':diffs},'config':{}}).encode()
cd=put(cfg)
man=json.dumps({'schemaVersion':2,'mediaType':'application/vnd.oci.image.manifest.v1+json','config':{'mediaType':'application/vnd.oci.image.config.v1+json','digest':cd,'size':len(cfg)},'layers':layers}).encode()
md=put(man)
open(root+'/index.json','w').write(json.dumps({'schemaVersion':2,'manifests':[{'mediaType':'application/vnd.oci.image.manifest.v1+json','digest':md,'size':len(man),'annotations':{'org.opencontainers.image.ref.name':'big'}}]}))
open(root+'/oci-layout','w').write('{"imageLayoutVersion":"1.0.0"}')
