"""Pure, Kafka-free stream logic (see ARCHITECTURE.md): per-key processors of one shape
(``base.Processor``), declared as named steps per machine and per line (``stages``), walked by
``steps.Chain``."""
