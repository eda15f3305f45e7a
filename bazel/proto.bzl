"""Code generation for the contract, by Debian's protoc and its plugins.

One .proto yields C++ (messages and gRPC), Python (*_pb2.py, *_pb2_grpc.py) and
Go (protoc-gen-go, protoc-gen-go-grpc) sources. The tools are the system's:
nothing is downloaded, and the generated code matches the libraries it links
or imports (Debian's libprotobuf, python3-grpcio, grpc-go).
"""

_PROTOC = "/usr/bin/protoc"

def _stem(src):
    if not src.endswith(".proto"):
        fail("expected a .proto file, got " + src)
    return src[:-len(".proto")]

def _protoc(src, flags):
    # The package directory is the proto root, so generated files keep the
    # proto's own path (presence/v1/...), and includes read the same in every
    # language. /usr/include holds the well-known types.
    return " ".join([
        _PROTOC,
        "-I" + (native.package_name() or "."),
        "-I/usr/include",
    ] + flags + ["$(location %s)" % src])

def proto_codegen(name, src, deps_cc = [], visibility = None):
    """Generates <name>_cc, <name>_py and <name>_go_srcs from one .proto.

    Args:
      name: prefix of the generated targets.
      src: the .proto file, relative to this package, which is its proto root.
      deps_cc: extra deps for the C++ library.
      visibility: visibility of the generated targets.
    """
    stem = _stem(src)

    cc_outs = [stem + ext for ext in [".pb.h", ".pb.cc", ".grpc.pb.h", ".grpc.pb.cc"]]
    native.genrule(
        name = name + "_cc_gen",
        srcs = [src],
        outs = cc_outs,
        cmd = _protoc(src, [
            "--cpp_out=$(RULEDIR)",
            "--grpc_out=$(RULEDIR)",
            "--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin",
        ]),
    )
    native.cc_library(
        name = name + "_cc",
        srcs = [stem + ".pb.cc", stem + ".grpc.pb.cc"],
        hdrs = [stem + ".pb.h", stem + ".grpc.pb.h"],
        includes = ["."],
        # Generated code: its warnings are not ours to fix.
        copts = ["-w"],
        deps = ["@system//:grpc++", "@system//:protobuf"] + deps_cc,
        visibility = visibility,
    )

    py_outs = [stem + "_pb2.py", stem + "_pb2_grpc.py"]
    native.genrule(
        name = name + "_py_gen",
        srcs = [src],
        outs = py_outs,
        cmd = _protoc(src, [
            "--python_out=$(RULEDIR)",
            "--grpc_python_out=$(RULEDIR)",
            "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
        ]),
    )
    native.py_library(
        name = name + "_py",
        srcs = py_outs,
        imports = ["."],
        visibility = visibility,
    )

    go_outs = [stem + ".pb.go", stem + "_grpc.pb.go"]
    native.genrule(
        name = name + "_go_gen",
        srcs = [src],
        outs = go_outs,
        cmd = _protoc(src, [
            "--go_out=$(RULEDIR)",
            "--go_opt=paths=source_relative",
            "--go-grpc_out=$(RULEDIR)",
            "--go-grpc_opt=paths=source_relative",
            "--plugin=protoc-gen-go=/usr/bin/protoc-gen-go",
            "--plugin=protoc-gen-go-grpc=/usr/bin/protoc-gen-go-grpc",
        ]),
    )
    native.filegroup(
        name = name + "_go_srcs",
        srcs = go_outs,
        visibility = visibility,
    )
