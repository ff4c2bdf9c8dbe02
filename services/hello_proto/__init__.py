"""Generated gRPC stubs for proto/hello.proto (regenerate: python proto/generate.py)."""
