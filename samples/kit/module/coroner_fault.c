// SPDX-License-Identifier: GPL-2.0-only
/*
 * coroner_fault: faults on demand, for coroner's end-to-end tests of backtraces
 * through a module (the kit's coroner.run=oops and coroner.run=spin).
 *
 *   echo 1 > /sys/module/coroner_fault/parameters/oops
 *       the writing task dereferences NULL inside this module (an oops; with
 *       oops=panic on the command line, a panic)
 *   echo 1 > /sys/module/coroner_fault/parameters/spin
 *       a kernel thread "coroner_spin" spins with preemption disabled inside this
 *       module until the module is removed (a soft lockup after twice
 *       watchdog_thresh)
 */
#include <linux/err.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/preempt.h>

static int *volatile coroner_fault_target;
static bool coroner_fault_stop;
static struct task_struct *coroner_fault_thread;

static noinline void coroner_fault_oops(void)
{
	WRITE_ONCE(*coroner_fault_target, 0xc0);
}

static int coroner_fault_oops_set(const char *val, const struct kernel_param *kp)
{
	coroner_fault_oops();
	return 0;
}

static noinline void coroner_fault_spin(void)
{
	preempt_disable();
	while (!READ_ONCE(coroner_fault_stop))
		cpu_relax();
	preempt_enable();
}

static int coroner_fault_spin_thread(void *unused)
{
	coroner_fault_spin();
	while (!kthread_should_stop())
		schedule_timeout_interruptible(HZ);
	return 0;
}

static int coroner_fault_spin_set(const char *val, const struct kernel_param *kp)
{
	struct task_struct *t;

	if (coroner_fault_thread)
		return -EBUSY;
	t = kthread_run(coroner_fault_spin_thread, NULL, "coroner_spin");
	if (IS_ERR(t))
		return PTR_ERR(t);
	coroner_fault_thread = t;
	return 0;
}

static const struct kernel_param_ops coroner_fault_oops_ops = {
	.set = coroner_fault_oops_set,
};

static const struct kernel_param_ops coroner_fault_spin_ops = {
	.set = coroner_fault_spin_set,
};

module_param_cb(oops, &coroner_fault_oops_ops, NULL, 0200);
MODULE_PARM_DESC(oops, "write 1: dereference NULL in coroner_fault_oops()");
module_param_cb(spin, &coroner_fault_spin_ops, NULL, 0200);
MODULE_PARM_DESC(spin, "write 1: a kernel thread spins in coroner_fault_spin()");

static void __exit coroner_fault_exit(void)
{
	WRITE_ONCE(coroner_fault_stop, true);
	if (coroner_fault_thread)
		kthread_stop(coroner_fault_thread);
}

static int __init coroner_fault_init(void)
{
	return 0;
}

module_init(coroner_fault_init);
module_exit(coroner_fault_exit);
MODULE_DESCRIPTION("Faults on demand for coroner's tests");
MODULE_LICENSE("GPL");
