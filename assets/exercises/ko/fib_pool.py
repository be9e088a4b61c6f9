"""parlab 연습 문제 beat-the-gil: 재귀 피보나치를 단순 반복문보다 빠르게 만듭니다.

    parlab check beat-the-gil fib_pool.py

검사기는 이 파일을 임포트한 뒤 워밍업으로 sequential()과 parallel()을 한 번씩 호출하고, 이어서 각각을 여러 번
실행해 시간을 잽니다. parallel()은 sequential()과 정확히 같은 값을 반환해야 하며, 최소 0.7 x 코어 수만큼
빨라야 합니다(코어 수 = 사용 가능한 코어 수, 단 작업 하나당 최대 하나: 2코어 머신에서는 1.4x).

주어진 그대로의 parallel()은 스레드를 사용합니다. 먼저 검사를 한 번 실행해 GIL이 CPU 바운드 스레드에 어떤
영향을 주는지 확인하십시오. 그런 다음 작업이 실제로 모든 코어에서 실행되도록 parallel()을 고치십시오.
"""

from concurrent.futures import ThreadPoolExecutor

# 원래 튜토리얼은 fib(35)~fib(38)을 사용했는데, CPython에서는 몇 분이 걸립니다. fib(27) 16개면 측정하기에
# 충분하며(모두 합쳐 약 0.5초), 워커 수가 몇 개든 고르게 나눌 수 있습니다.
NUMBERS = [27] * 16


def fib(n):
    """일부러 느리게 만들었습니다: 캐시 없는 단순 재귀입니다."""
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def sequential():
    return [fib(n) for n in NUMBERS]


def parallel():
    # TODO: 이 스레드들은 GIL 하나를 공유하므로 한 번에 하나만 파이썬 코드를 실행합니다.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(fib, NUMBERS))


if __name__ == "__main__":
    import time

    for fn in (sequential, parallel):
        start = time.perf_counter()
        fn()
        print(f"{fn.__name__:10} {time.perf_counter() - start:.3f} s")
