"""Verify the installed stack: ``python tools/misc/check_env.py``. Exit code 1 if a required check fails."""
import sys

from mplug2.utils.collect_env import check_environment


def main() -> int:
    checks = check_environment()
    width = max(len(check.name) for check in checks)
    for check in checks:
        status = 'ok' if check.ok else ('FAIL' if check.required else 'warn')
        print(f'{check.name:<{width}}  {status:<4}  {check.detail}')
        if not check.ok:
            print(f'{"":<{width}}        -> {check.fix}')
    failed = [check.name for check in checks if check.required and not check.ok]
    if failed:
        print(f'\nenvironment check failed: {", ".join(failed)}', file=sys.stderr)
        return 1
    print('\nenvironment ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
