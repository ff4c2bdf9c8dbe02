"""hello-load: an open-model load generator for the HelloApi gRPC service.

Pure logic (schedules, statistics, thresholds, the report model) lives in
modules without I/O; the gRPC workers, the Kafka verification reader and
the report writers are thin adapters around them.
"""

__version__ = "0.1.0"
