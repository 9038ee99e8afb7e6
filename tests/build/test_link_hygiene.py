"""The built programs and the torch wheel's LibTorch do not step on each other.

Fails when any of the known risks of building on the PyPI torch wheel returns:
  * protobuf: no object was compiled against the wheel's own (old) protobuf
    headers (torch/include/google), and no library of the wheel defines a
    protobuf symbol that a program takes from Debian's libprotobuf;
  * gloo: only the torch wheel's own libraries (libtorch_cpu, libtorch_cuda)
    define Gloo symbols, never Debian's libgloo nor our programs;
  * CUDA: every CUDA library a program loads (runtime, cuBLAS, cuDNN, NCCL,
    ...) comes from the wheel's nvidia packages, none from the system toolkit,
    and each is loaded once;
  * std::filesystem: the wheel's libtorch and libtorch_cpu export their own
    copy; libstdc++ must precede them among a program's needed libraries so
    that every call binds to the system's;
  * every library resolves (ldd finds no "not found").

  python test_link_hygiene.py BUILD_DIR
"""
import os
import re
import subprocess
import sys

PROGRAMS = ["segqatd", "segqat-worker", "bench_inference"]
CUDA_LIB = re.compile(r"^lib(cudart|cublas|cublasLt|cudnn\w*|nccl|nvrtc|nvJitLink|cusparse\w*|"
                      r"cufft|curand|cusolver|cufile|nvshmem\w*|cupti|nvToolsExt)\.so")


def fail(msg):
    sys.exit("link hygiene: FAIL: " + msg)


def ldd(path):
    """name -> resolved path of every library the program loads."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    libs = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (.*) \(0x", line)
        if m:
            libs[m.group(1)] = os.path.realpath(m.group(2).strip())
        elif "not found" in line:
            fail("%s: %s" % (path, line.strip()))
    return libs


def dynamic_symbols(path, defined, strong_only=False):
    """Dynamic symbol names; strong_only: defined in code or data, not weak
    (template instances are weak and identical wherever they are emitted)."""
    flag = "--defined-only" if defined else "--undefined-only"
    out = subprocess.run(["nm", "-D", flag, path], capture_output=True, text=True,
                         check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if not parts or (strong_only and parts[-2] not in "TDBR"):
            continue
        names.add(parts[-1])
    return names


def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True,
                         check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", out)


def check_headers(build):
    """No object depends on a header under the wheel's torch/include/google."""
    deps = subprocess.run(["ninja", "-C", build, "-t", "deps"], capture_output=True, text=True,
                          check=True).stdout
    bad = sorted({line.strip() for line in deps.splitlines()
                  if "torch/include/google/" in line})
    if bad:
        fail("objects compiled against the torch wheel's protobuf headers: %s" % bad[:5])
    objects = deps.count("#deps")
    if objects < 50:
        fail("ninja knows the headers of only %d objects: build first" % objects)
    print("ok headers: %d objects, none compiled against torch/include/google" % objects)


def main():
    build = sys.argv[1]
    check_headers(build)
    for name in PROGRAMS:
        path = os.path.join(build, "bin", name)
        if not os.path.exists(path):
            fail("%s not built" % path)
        libs = ldd(path)
        order = needed(path)
        first_torch = min((i for i, n in enumerate(order) if n.startswith(("libtorch", "libc10"))),
                          default=len(order))
        if "libstdc++.so.6" not in order[:first_torch]:
            fail("%s: libstdc++ is not needed before LibTorch (%s): std::filesystem would bind "
                 "to the wheel's copy" % (name, order))
        torch_libs = {n: p for n, p in libs.items()
                      if re.match(r"lib(torch|torch_cpu|torch_cuda|c10|c10_cuda)\.so$", n)}
        if name != "segqat" and "libtorch_cpu.so" not in torch_libs:
            fail("%s does not load libtorch_cpu.so" % name)
        for n, p in torch_libs.items():
            if "/site-packages/torch/lib/" not in p:
                fail("%s loads %s from %s, not from the torch wheel" % (name, n, p))
        if "libtorch_cuda.so" not in torch_libs:
            fail("%s does not load libtorch_cuda.so: CUDA would never register" % name)
        if any(n.startswith("libgloo") for n in libs):
            fail("%s loads Debian's libgloo next to the Gloo inside libtorch_cpu" % name)
        cuda = {n: p for n, p in libs.items() if CUDA_LIB.match(n)}
        for n, p in cuda.items():
            if "/site-packages/nvidia/" not in p:
                fail("%s loads %s from %s, not from the wheel's nvidia packages" % (name, n, p))
        stems = [re.sub(r"\.so.*", "", n) for n in cuda]
        twice = sorted({s for s in stems if stems.count(s) > 1})
        if twice:
            fail("%s loads two copies of %s" % (name, twice))
        if not any(n.startswith("libcudart") for n in cuda):
            fail("%s loads no CUDA runtime at all (expected the wheel's libcudart)" % name)

        # Symbols: what the program takes from Debian's protobuf must not be
        # defined by a torch library too; Gloo is defined in one library only.
        wanted_pb = {s for s in dynamic_symbols(path, defined=False)
                     if s.startswith("_ZN6google8protobuf")}
        gloo_owners = {}
        for n, p in libs.items():
            if not (p.startswith("/") and os.path.exists(p)):
                continue
            defined = dynamic_symbols(p, defined=True)
            if n in torch_libs:
                clash = wanted_pb & defined
                if clash:
                    fail("%s defines protobuf symbols %s that %s takes from libprotobuf"
                         % (n, sorted(clash)[:3], name))
            if any(sym.startswith("_ZN4gloo") for sym in defined):
                gloo_owners[n] = p
        # The wheel links its own Gloo into libtorch_cpu and libtorch_cuda; any
        # other definition (Debian's libgloo, our programs) would interpose.
        strangers = {n: p for n, p in gloo_owners.items() if n not in torch_libs}
        if any(sym.startswith("_ZN4gloo") for sym in dynamic_symbols(path, defined=True)):
            strangers[name] = path
        if strangers:
            fail("%s: Gloo defined outside the torch wheel by %s" % (name, strangers))
        print("ok %-15s %d libraries: LibTorch from the wheel, %d CUDA libraries from its nvidia "
              "packages (%s), %d protobuf symbols from Debian's libprotobuf with no twin, Gloo in %s"
              % (name, len(libs), len(cuda), ", ".join(sorted(cuda)), len(wanted_pb),
                 ", ".join(gloo_owners) or "none"))


if __name__ == "__main__":
    main()
