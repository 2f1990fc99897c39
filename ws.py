import asyncio, json, requests, websockets, sys
async def main():
    requests.post("http://127.0.0.1:18140/api/register/", json={"username":"u1","password":"password-1"})
    tok = requests.post("http://127.0.0.1:18140/api/login/", json={"username":"u1","password":"password-1"}).json()["access"]
    async with websockets.connect(f"ws://127.0.0.1:18140/api/chat/send/?token={tok}") as ws:
        print("open", flush=True)
        await asyncio.sleep(60)
asyncio.run(main())
