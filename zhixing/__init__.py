"""zhixing: an asyncio-native order execution engine for China's A-share market."""
