"""The only modules that do I/O, each behind one port."""

from agent.adapters.kube_library import load_kubernetes_client_on_demand

# Before any adapter imports kubernetes-asyncio: see kube_library.
load_kubernetes_client_on_demand()
