"""Mutation check: do the tests notice curated bugs in the model, generation, metrics, datasets
and checkpoint code?

Usage::

    python tools/analysis_tools/mutation_check.py                 # every mutation, one at a time
    python tools/analysis_tools/mutation_check.py --list          # the curated list
    python tools/analysis_tools/mutation_check.py --check         # do they all still apply?
    python tools/analysis_tools/mutation_check.py --only qa_rank_argmin cider_unclipped
    python tools/analysis_tools/mutation_check.py --jobs 2 --timeout 600 --json mutations.json

Each mutation replaces one exact snippet of one file (it must occur exactly once) and names the
test files that should notice it. The working tree is never touched: the tracked and untracked,
not ignored, files (``git ls-files -co --exclude-standard``) are copied into a temporary folder
(one per job), the mutation is applied there, ``python -m pytest -x -q`` runs the listed tests
in that copy with a timeout, and the file is restored before the next mutation.

* **killed**: the tests failed (or the run timed out: reported as ``timeout``, counted killed);
* **survived**: the tests passed with the bug in place;
* **invalid**: the snippet is not in the file exactly once (the code changed: update the list)
  or the mutated file does not compile; not counted.

Before the mutations the listed test files run once unmutated in the copy (the baseline, without
``-x``); tests that already fail there are deselected in every mutation run and reported, so a
tree in flux gives no false kills. The score is killed / (killed + survived).

``--head-files PATH ...`` takes those files from ``HEAD`` instead of the working tree in the copy
(e.g. a file someone is editing right now). The Python is ``.venv/bin/python`` when present
(``--python`` to change it). Tests of distributed runs pick their ports per process, so
``--jobs 2`` is safe, but two jobs on a 2-core machine are rarely faster.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import os.path as osp
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    original: str
    mutated: str
    tests: Tuple[str, ...]
    about: str


def _m(name, path, original, mutated, tests, about):
    return Mutation(name, path, original, mutated, tuple(tests), about)


GENERATION = 'mplug2/models/decoders/generation.py'
T_GENERATION = ['tests/test_models/test_generation.py']
T_TASKS = ['tests/test_models/test_mplug2_tasks.py']
T_RETRIEVAL = ['tests/test_models/test_retrieval.py']
T_METRICS = ['tests/test_evaluation/test_metrics.py']
T_CHECKPOINT = ['tests/test_engine/test_checkpoint.py']
T_CLEANING = ['tests/test_datasets/test_text_cleaning.py']
T_LM_LOSS = ['tests/test_models/test_text_modules.py', 'tests/test_models/test_mplug2_tasks.py']

MUTATIONS: List[Mutation] = [
    # ------------------------------------------------------------------ bugs a review planted
    _m('qa_rank_argmin', 'mplug2/models/multimodal/qa.py',
       'best = log_likelihood.view(batch_size, top_k).argmax(dim=1)',
       'best = log_likelihood.view(batch_size, top_k).argmin(dim=1)',
       T_TASKS, 'answer-list ranking picks the least likely answer'),
    _m('captioner_ignores_force_prompt', 'mplug2/models/multimodal/captioner.py',
       'if self.force_prompt and self.prompt:', 'if self.prompt:',
       T_TASKS + ['tests/test_models/test_scst.py'],
       'force_prompt=False (official decoding from [CLS] alone) still feeds the prompt'),
    _m('caption_loss_counts_prompt', 'mplug2/models/multimodal/captioner.py',
       "labels = lm_labels(tokens['input_ids'], tokens['attention_mask'], self.prompt_length)",
       "labels = lm_labels(tokens['input_ids'], tokens['attention_mask'], 1)",
       T_TASKS, 'the caption loss counts the prompt tokens'),
    _m('cider_unclipped', 'mplug2/models/multimodal/cider.py',
       'min(weight, vec_r[k].get(gram, 0.0)) * vec_r[k].get(gram, 0.0)',
       'weight * vec_r[k].get(gram, 0.0)',
       ['tests/test_models/test_scst.py'], "CIDEr-D without its clipping (the 'D')"),
    _m('inference_results_reordered', 'mplug2/apis/inference.py',
       '    return results\n\n\ndef answer_question(',
       '    return results[::-1]\n\n\ndef answer_question(',
       ['tests/test_apis/test_inference.py'], 'the inference API returns the results in reverse order'),
    _m('lt2_residual_halved', 'mplug2/models/backbones/dual_vision_encoder.py',
       'x = self.local_temporal(self.lmhra2, x, num_frames)',
       'x = x + 0.5 * (self.local_temporal(self.lmhra2, x, num_frames) - x)',
       ['tests/test_models/test_dual_vision_encoder.py'], 'the second local-temporal residual is halved'),
    _m('annotation_jsonl_non_object_generic_message', 'mplug2/datasets/annotation_io.py',
       "raise AnnotationError(f'{path}:{lineno}',\n"
       "                                      f'expected a JSON object, got {type(record).__name__}')",
       "raise AnnotationError(f'{path}:{lineno}', 'invalid record')",
       ['tests/test_datasets/test_annotations.py'],
       'a .jsonl line that is not a JSON object gets a generic message'),
    _m('benchmark_tokens_per_s_without_batch', 'tools/analysis_tools/benchmark.py',
       'tokens_per_s=args.batch_size * steps / latency,', 'tokens_per_s=steps / latency,',
       ['tests/test_tools/test_benchmark.py', 'tests/test_tools/test_benchmark_docs.py'],
       "the benchmark's tokens/s drops the batch factor"),
    # ------------------------------------------------------------------ generation (beam search, greedy)
    _m('gen_length_penalty_off_by_one', GENERATION,
       'return ((5.0 + (step + 1)) / 6.0)**alpha', 'return ((5.0 + step) / 6.0)**alpha',
       T_GENERATION, 'GNMT length penalty of the previous step'),
    _m('gen_min_length_off_by_one', GENERATION,
       '    if step < min_length:\n        log_probs[:, eos_token_id] = EOS_BAN_LOGPROB',
       '    if step < min_length - 1:\n        log_probs[:, eos_token_id] = EOS_BAN_LOGPROB',
       T_GENERATION, 'eos allowed one step before min_length'),
    _m('gen_item_ends_on_any_eos', GENERATION,
       'ending = is_eos[:, 0]', 'ending = is_eos.any(dim=1)',
       T_GENERATION, 'an item ends when any beam (not the top one) emits eos'),
    _m('gen_eos_beams_not_saved', GENERATION,
       'save = is_eos | ending[:, None]', 'save = ending[:, None].expand_as(is_eos)',
       T_GENERATION, 'a beam that emits eos is not saved as a hypothesis'),
    _m('gen_all_beams_alive_at_first_step', GENERATION,
       'cum_log_probs[:, 0] = 0.0', 'cum_log_probs[:] = 0.0',
       T_GENERATION, 'every beam starts alive: the first expansion repeats tokens'),
    _m('gen_cumulative_score_kept_normalised', GENERATION,
       'new_cum = top_scores * penalty', 'new_cum = top_scores',
       T_GENERATION, 'the cumulative log-prob keeps the length normalisation'),
    _m('gen_nothing_saved_at_max_length', GENERATION,
       'if step + 1 == max_length:', 'if step == max_length:',
       T_GENERATION, 'the beams alive at the last step are not saved'),
    _m('greedy_restarts_finished_rows', GENERATION,
       'unfinished = unfinished & next_tokens.ne(eos_token_id)',
       'unfinished = next_tokens.ne(eos_token_id)',
       T_GENERATION, 'greedy rows continue after their eos'),
    # ------------------------------------------------------------------ ITC / ITM heads
    _m('itc_one_direction', 'mplug2/models/heads/itc_head.py',
       'return (loss_v2t + loss_t2v) / 2', 'return loss_v2t',
       T_RETRIEVAL, 'ITC loss of the vision-to-text direction only'),
    _m('itc_no_distillation_t2v', 'mplug2/models/heads/itc_head.py',
       'targets_t2v = alpha * sim_t2v_m.softmax(dim=1) + (1 - alpha) * targets',
       'targets_t2v = targets',
       T_RETRIEVAL, 'no momentum distillation in the text-to-vision targets'),
    _m('itc_queue_pointer_stuck', 'mplug2/models/heads/itc_head.py',
       'self.queue_ptr[0] = (ptr + count) % self.queue_size', 'self.queue_ptr[0] = ptr',
       T_RETRIEVAL, 'the feature queue overwrites the same slots'),
    _m('itm_negatives_may_share_the_id', 'mplug2/models/heads/itm_head.py',
       'probs = (sim.float().softmax(dim=1) + 1e-5).masked_fill(same, 0)',
       'probs = sim.float().softmax(dim=1) + 1e-5',
       T_RETRIEVAL, 'hard negatives drawn from pairs of the same video'),
    _m('itm_missing_negatives_scored', 'mplug2/models/heads/itm_head.py',
       'labels[batch_size:][~has_negative.repeat(2)] = -100',
       'labels[batch_size:][~has_negative.repeat(2)] = 0',
       T_RETRIEVAL, 'placeholder negatives of a one-id batch are scored as negatives'),
    # ------------------------------------------------------------------ language-model loss
    _m('lm_loss_counts_padding', 'mplug2/models/heads/lm_loss.py',
       'labels = labels.masked_fill(attention_mask == 0, -100)', 'labels = labels',
       T_LM_LOSS, 'padding positions are targets'),
    _m('lm_loss_unshifted', 'mplug2/models/heads/lm_loss.py',
       'shifted_labels = labels[:, 1:]', 'shifted_labels = labels[:, :-1]',
       T_LM_LOSS, 'each position predicts itself, not the next token'),
    _m('lm_loss_mean_over_all_positions', 'mplug2/models/heads/lm_loss.py',
       'num_tokens = (shifted_labels != -100).sum().clamp(min=1)',
       'num_tokens = shifted_labels.numel()',
       T_LM_LOSS, 'the token mean divides by ignored positions too'),
    # ------------------------------------------------------------------ retrieval ranking and recall
    _m('retrieval_ranks_ascending', 'mplug2/evaluation/metrics/retrieval.py',
       'order = torch.argsort(-sim, dim=1, stable=True)',
       'order = torch.argsort(sim, dim=1, stable=True)',
       T_METRICS + ['tests/test_engine/test_retrieval_loop.py'], 'the lowest similarity ranks first'),
    _m('recall_at_k_inclusive', 'mplug2/evaluation/metrics/retrieval.py',
       'float(np.mean(ranks < k))', 'float(np.mean(ranks <= k))',
       T_METRICS + ['tests/test_engine/test_retrieval_loop.py'], 'R@k counts rank k + 1'),
    _m('median_rank_zero_based', 'mplug2/evaluation/metrics/retrieval.py',
       "metrics['MedR'] = float(np.median(ranks)) + 1", "metrics['MedR'] = float(np.median(ranks))",
       T_METRICS + ['tests/test_engine/test_retrieval_loop.py'], 'MedR is 0-based'),
    _m('rerank_ignores_itc_in_itm_plus_itc', 'mplug2/models/multimodal/retriever.py',
       'topk_scores = topk_scores + topk_sim', 'topk_scores = topk_scores',
       T_RETRIEVAL + ['tests/test_engine/test_retrieval_loop.py'],
       "rerank_score='itm+itc' ranks by ITM alone"),
    _m('rerank_partial_scores_not_summed', 'mplug2/models/multimodal/retriever.py',
       '            reduce(topk_scores)\n', '            pass\n',
       T_RETRIEVAL + ['tests/test_tools/test_dist_retrieval.py'],
       'distributed retrieval ranks with one rank\'s partial ITM scores'),
    # ------------------------------------------------------------------ QA accuracy
    _m('qa_accuracy_first_answer_only', 'mplug2/evaluation/metrics/video_qa.py',
       "correct = norm(result['pred']) in {norm(a) for a in result['gt']}",
       "correct = norm(result['pred']) == norm(result['gt'][0])",
       T_METRICS, 'a prediction equal to another listed answer counts wrong'),
    _m('qa_accuracy_per_type_over_all', 'mplug2/evaluation/metrics/video_qa.py',
       "metrics[f'acc_{key}'] = 100.0 * totals[key][0] / totals[key][1]",
       "metrics[f'acc_{key}'] = 100.0 * totals[key][0] / totals[''][1]",
       T_METRICS, 'per-type accuracy divided by all the questions'),
    # ------------------------------------------------------------------ checkpoint allowlist
    _m('checkpoint_real_getattr_allowed', 'mplug2/utils/checkpoint.py',
       "(_history_buffer_getattr, 'builtins.getattr'),", "(getattr, 'builtins.getattr'),",
       T_CHECKPOINT, 'a checkpoint may call the real getattr'),
    _m('checkpoint_private_getattr_allowed', 'mplug2/utils/checkpoint.py',
       "if obj is HistoryBuffer and not name.startswith('_') and callable(",
       'if obj is HistoryBuffer and callable(',
       T_CHECKPOINT, "the getattr stand-in resolves private attributes of HistoryBuffer"),
    _m('checkpoint_not_weights_only', 'mplug2/utils/checkpoint.py',
       'return torch.load(filename, map_location=map_location, weights_only=True)',
       'return torch.load(filename, map_location=map_location, weights_only=False)',
       T_CHECKPOINT, 'checkpoints are fully unpickled'),
    # ------------------------------------------------------------------ text cleaning and datasets
    _m('clean_keeps_question_marks', 'mplug2/datasets/transforms/text.py',
       '_STRIP_CHARS = re.compile(r"[,.\'!?\\"()*#:;~]")',
       '_STRIP_CHARS = re.compile(r"[,.\'!\\"()*#:;~]")',
       T_CLEANING, "'?' is no longer deleted"),
    _m('clean_not_lower_cased', 'mplug2/datasets/transforms/text.py',
       "text = _STRIP_CHARS.sub('', text.lower())", "text = _STRIP_CHARS.sub('', text)",
       T_CLEANING, 'text is not lower-cased'),
    _m('clean_caption_spaces_not_collapsed', 'mplug2/datasets/transforms/text.py',
       "caption = _MULTI_SPACE.sub(' ', caption)", 'caption = caption',
       T_CLEANING, 'runs of spaces in captions are kept'),
    _m('clean_max_words_off_by_one', 'mplug2/datasets/transforms/text.py',
       "text = ' '.join(words[:max_words])", "text = ' '.join(words[:max_words - 1])",
       T_CLEANING, 'one word fewer than max_words is kept'),
    _m('annotation_json_non_object_generic_message', 'mplug2/datasets/annotation_io.py',
       "raise AnnotationError(f'{path}[{index}]',\n"
       "                                  f'expected a JSON object, got {type(record).__name__}')",
       "raise AnnotationError(f'{path}[{index}]', 'invalid record')",
       ['tests/test_datasets/test_annotations.py'],
       'an entry of a .json list that is not a JSON object gets a generic message'),
    _m('caption_test_references_not_lower_cased', 'mplug2/datasets/video_caption.py',
       'gt_caption=[c.lower() for c in captions])', 'gt_caption=list(captions))',
       ['tests/test_datasets/test_annotations.py', 'tests/test_datasets/test_loading.py'],
       'test references keep their capitals'),
    _m('qa_answer_weights_not_normalised', 'mplug2/datasets/video_qa.py',
       'answer_weight=[n / len(answers) for n in counts.values()],',
       'answer_weight=[float(n) for n in counts.values()],',
       ['tests/test_datasets/test_annotations.py', 'tests/test_datasets/test_loading.py'],
       'answer weights are counts, not frequencies'),
    _m('seeded_sampler_ignores_the_epoch', 'mplug2/datasets/samplers.py',
       'yield SeededIndex(index, sample_seed(self.seed, self.epoch, index))',
       'yield SeededIndex(index, sample_seed(self.seed, 0, index))',
       ['tests/test_datasets/test_exact_resume.py'], 'every epoch draws the same augmentations'),
]


# --------------------------------------------------------------------------- running
@dataclass
class Result:
    name: str
    status: str  # killed / timeout / survived / invalid
    seconds: float = 0.0
    detail: str = ''  # the first failing test, or why a mutation is invalid
    tests: Tuple[str, ...] = ()
    output_tail: str = field(default='', repr=False)


def default_python() -> str:
    venv = osp.join(ROOT, '.venv', 'bin', 'python')
    return venv if osp.isfile(venv) else sys.executable


def copy_tree(dest: str, head_files: Sequence[str] = ()) -> int:
    """Copy the tracked and untracked, not ignored, files of the working tree to ``dest``."""
    listing = subprocess.run(['git', '-C', ROOT, 'ls-files', '-co', '--exclude-standard', '-z'],
                             check=True, capture_output=True).stdout.decode()
    count = 0
    for rel in sorted(set(filter(None, listing.split('\0')))):
        src = osp.join(ROOT, rel)
        if not osp.isfile(src) and not osp.islink(src):
            continue  # deleted in the working tree, or a submodule folder
        target = osp.join(dest, rel)
        os.makedirs(osp.dirname(target), exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
        count += 1
    for rel in head_files:
        content = subprocess.run(['git', '-C', ROOT, 'show', f'HEAD:{rel}'], check=True,
                                 capture_output=True).stdout
        with open(osp.join(dest, rel), 'wb') as f:
            f.write(content)
    return count


def test_env(copy: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(('PYTEST_', 'MPLUG2_DEMO_'))}
    env['PYTHONPATH'] = copy  # never the working tree
    env['PYTHONDONTWRITEBYTECODE'] = '1'  # no stale .pyc of a mutated file
    return env


def run_pytest(python: str, copy: str, args: Sequence[str],
               timeout: float) -> Tuple[Optional[int], str, float]:
    """(return code or None on timeout, output, seconds); the whole process group is killed on
    timeout (tests start subprocesses)."""
    start = time.time()
    proc = subprocess.Popen([python, '-m', 'pytest', '-p', 'no:cacheprovider', *args], cwd=copy,
                            env=test_env(copy), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        return proc.returncode, output, time.time() - start
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return None, output, time.time() - start
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise


FAILED_LINE = re.compile(r'^(?:FAILED|ERROR) (\S+)', re.M)


def failing_tests(output: str) -> List[str]:
    return list(dict.fromkeys(FAILED_LINE.findall(output)))


def check_mutation(mutation: Mutation, copy: str) -> Optional[str]:
    """Why ``mutation`` cannot be applied in ``copy`` (None: it can)."""
    path = osp.join(copy, mutation.path)
    if not osp.isfile(path):
        return f'{mutation.path} does not exist'
    with open(path, encoding='utf-8') as f:
        text = f.read()
    count = text.count(mutation.original)
    if count != 1:
        return f'the original snippet occurs {count} times in {mutation.path}'
    mutated = text.replace(mutation.original, mutation.mutated)
    if mutation.path.endswith('.py'):
        try:
            compile(mutated, path, 'exec')
        except SyntaxError as error:
            return f'the mutated file does not compile: {error}'
    for test in mutation.tests:
        if not osp.exists(osp.join(copy, test.split('::')[0])):
            return f'test file {test} does not exist'
    return None


def run_mutation(mutation: Mutation, python: str, copy: str, deselect: Sequence[str],
                 timeout: float) -> Result:
    why = check_mutation(mutation, copy)
    if why is not None:
        return Result(mutation.name, 'invalid', detail=why, tests=mutation.tests)
    path = osp.join(copy, mutation.path)
    with open(path, encoding='utf-8') as f:
        original = f.read()
    try:
        with open(path, 'w', encoding='utf-8') as f:
            f.write(original.replace(mutation.original, mutation.mutated))
        args = ['-x', '-q', '-rfE'] + [f'--deselect={test}' for test in deselect] + list(mutation.tests)
        code, output, seconds = run_pytest(python, copy, args, timeout)
    finally:
        with open(path, 'w', encoding='utf-8') as f:
            f.write(original)
    tail = output[-4000:]
    if code is None:
        return Result(mutation.name, 'timeout', seconds, f'no result in {timeout:.0f} s',
                      mutation.tests, tail)
    if code == 0:
        return Result(mutation.name, 'survived', seconds, '', mutation.tests, tail)
    if code in (1, 2):  # tests failed / collection or import failed (the mutation broke it)
        failed = failing_tests(output)
        return Result(mutation.name, 'killed', seconds, failed[0] if failed else f'pytest exit {code}',
                      mutation.tests, tail)
    return Result(mutation.name, 'invalid', seconds, f'pytest exit {code} (no tests ran?)',
                  mutation.tests, tail)


def baseline(python: str, copy: str, tests: Sequence[str], timeout: float) -> List[str]:
    """Run ``tests`` unmutated; return the tests that fail already (to be deselected)."""
    probe = subprocess.run([python, '-c', 'import mplug2; print(mplug2.__file__)'], cwd=copy,
                           env=test_env(copy), capture_output=True, text=True)
    where = probe.stdout.strip()
    if probe.returncode != 0 or not osp.realpath(where).startswith(osp.realpath(copy) + os.sep):
        raise SystemExit(f'the copy does not import its own mplug2 (got {where!r}): {probe.stderr[-2000:]}')
    code, output, seconds = run_pytest(python, copy, ['-q', '-rfE', *tests], timeout * 2)
    if code is None:
        raise SystemExit(f'the baseline run timed out after {seconds:.0f} s')
    if code not in (0, 1):
        raise SystemExit(f'the baseline run failed (pytest exit {code}):\n{output[-6000:]}')
    failed = failing_tests(output)
    print(f'baseline: {len(tests)} test files in {seconds:.0f} s, '
          + (f'{len(failed)} failing already (deselected): {", ".join(failed)}' if failed
             else 'all pass'), flush=True)
    return failed


def print_table(results: List[Result]) -> None:
    width = max(len(r.name) for r in results)
    print(f'\n{"mutation":<{width}}  {"status":<8}  {"time":>6}  detail')
    for r in results:
        print(f'{r.name:<{width}}  {r.status:<8}  {r.seconds:5.0f}s  {r.detail}')


def score_line(results: List[Result]) -> str:
    killed = sum(r.status in ('killed', 'timeout') for r in results)
    survived = [r.name for r in results if r.status == 'survived']
    invalid = [r.name for r in results if r.status == 'invalid']
    total = killed + len(survived)
    line = f'score: {killed}/{total} killed' + (f' ({100 * killed / total:.0f}%)' if total else '')
    timeouts = sum(r.status == 'timeout' for r in results)
    if timeouts:
        line += f', {timeouts} of them by timeout'
    if survived:
        line += f'\nsurvived: {", ".join(survived)}'
    if invalid:
        line += f'\ninvalid (not counted): {", ".join(invalid)}'
    return line


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--list', action='store_true', help='print the curated mutations and exit')
    parser.add_argument('--check', action='store_true',
                        help='only check that every mutation applies to the working tree (reads it)')
    parser.add_argument('--only', nargs='+', metavar='NAME', help='run these mutations only')
    parser.add_argument('--jobs', type=int, default=1, help='mutations run in parallel (own copies)')
    parser.add_argument('--timeout', type=float, default=900, help='seconds per mutation run')
    parser.add_argument('--python', default=None, help='the Python that runs pytest (.venv/bin/python)')
    parser.add_argument('--head-files', nargs='+', default=[], metavar='PATH',
                        help='take these files from HEAD instead of the working tree')
    parser.add_argument('--no-baseline', action='store_true', help='skip the unmutated run')
    parser.add_argument('--keep', action='store_true', help='keep the temporary copies')
    parser.add_argument('--json', default=None, help='write the results to this file')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    names = [m.name for m in MUTATIONS]
    assert len(set(names)) == len(names), 'mutation names must be unique'
    selected = MUTATIONS
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            print(f'unknown mutation(s): {", ".join(unknown)}; see --list', file=sys.stderr)
            return 2
        selected = [m for m in MUTATIONS if m.name in args.only]
    if args.list:
        for m in selected:
            print(f'{m.name}\n    {m.path}: {m.about}\n    tests: {" ".join(m.tests)}')
        print(f'{len(selected)} mutations')
        return 0
    if args.check:
        problems = [(m.name, check_mutation(m, ROOT)) for m in selected]
        problems = [(name, why) for name, why in problems if why is not None]
        for name, why in problems:
            print(f'{name}: {why}')
        print(f'{len(selected) - len(problems)}/{len(selected)} mutations apply')
        return 1 if problems else 0
    if args.jobs < 1:
        print('--jobs must be >= 1', file=sys.stderr)
        return 2
    python = args.python or default_python()
    started = time.time()
    print(f'mutation check of {ROOT} ({datetime.now().isoformat(timespec="minutes")}, '
          f'git {_head()}), {len(selected)} mutations, {args.jobs} job(s)', flush=True)
    workdir = tempfile.mkdtemp(prefix='mplug2_mutation_')
    copies = []
    try:
        for job in range(min(args.jobs, len(selected))):
            copy = osp.join(workdir, f'copy{job}')
            count = copy_tree(copy, args.head_files)
            copies.append(copy)
        print(f'copied {count} files to {workdir} ({len(copies)} copies)', flush=True)
        deselect: List[str] = []
        if not args.no_baseline:
            tests = list(dict.fromkeys(t for m in selected for t in m.tests
                                       if osp.exists(osp.join(copies[0], t.split('::')[0]))))
            deselect = baseline(python, copies[0], tests, args.timeout)
        results: Dict[str, Result] = {}
        free = queue.Queue()
        for copy in copies:
            free.put(copy)
        lock = threading.Lock()

        def work(mutation: Mutation) -> Result:
            copy = free.get()
            try:
                result = run_mutation(mutation, python, copy, deselect, args.timeout)
            finally:
                free.put(copy)
            with lock:
                done = len(results) + 1
                print(f'[{done}/{len(selected)}] {result.name}: {result.status} '
                      f'({result.seconds:.0f} s) {result.detail}', flush=True)
                results[result.name] = result
            return result

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(copies)) as pool:
            list(pool.map(work, selected))
        ordered = [results[m.name] for m in selected]
        print_table(ordered)
        elapsed = time.time() - started
        print(f'\n{score_line(ordered)}\ntotal time {elapsed / 60:.1f} min')
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(dict(date=datetime.now().isoformat(timespec='minutes'), git_head=_head(),
                               seconds=elapsed, deselected=deselect,
                               results=[asdict(r) for r in ordered]), f, indent=1)
        return 0
    finally:
        if args.keep:
            print(f'copies kept in {workdir}')
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _head() -> str:
    result = subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'], capture_output=True,
                            text=True)
    return result.stdout.strip() or 'unknown'


if __name__ == '__main__':
    sys.exit(main())
