"""The SMTP receive side: a purpose-built asyncio.Protocol state machine."""
