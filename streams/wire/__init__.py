"""Pure protocol code: AMQP 1.0 messages and the stream protocol's chunks, bytes in and out."""
