"""The running agent: the ports it needs from the outside world, one reconcile cycle, the
asyncio supervisor behind `cvsync run`, the wiring from Settings, write-back of status
files, and leader-election decisions. The adapters implement its ports.
"""
