"""Pure code: no asyncio, no rstream, no matplotlib, no files. The join, the
histogram, the row format, features' pace, replay's columnar match.
"""
