// SPDX-License-Identifier: GPL-2.0
/*
 * A gpiochip for the image's end-to-end tests, which Debian's kernels cannot give (they are built
 * without gpio-sim and gpio-mockup): eight lines named relay0..relay7 that keep the direction and
 * value they are set to, so that the kernel reports (/sys/kernel/debug/gpio) the level the agent
 * drove through the GPIO character device. Built out of tree against the image kernel's headers
 * by image/build and carried on the test disk: production images never hold it.
 */
#include <linux/bitmap.h>
#include <linux/gpio/driver.h>
#include <linux/module.h>

#define LINES 8

static const char *const names[LINES] = {
	"relay0", "relay1", "relay2", "relay3", "relay4", "relay5", "relay6", "relay7",
};

/* Set, cleared and read with atomic bit operations: no lock. */
static DECLARE_BITMAP(values, LINES);
/* Lines start as inputs, as a real chip's do after reset. */
static DECLARE_BITMAP(outputs, LINES);

static int get(struct gpio_chip *chip, unsigned int offset)
{
	return test_bit(offset, values);
}

static void set(struct gpio_chip *chip, unsigned int offset, int value)
{
	assign_bit(offset, values, value);
}

static int get_direction(struct gpio_chip *chip, unsigned int offset)
{
	return test_bit(offset, outputs) ? GPIO_LINE_DIRECTION_OUT : GPIO_LINE_DIRECTION_IN;
}

static int direction_input(struct gpio_chip *chip, unsigned int offset)
{
	clear_bit(offset, outputs);
	return 0;
}

static int direction_output(struct gpio_chip *chip, unsigned int offset, int value)
{
	set(chip, offset, value);
	set_bit(offset, outputs);
	return 0;
}

static struct gpio_chip chip = {
	.label = "daisee-test-gpio",
	.owner = THIS_MODULE,
	.base = -1,
	.ngpio = LINES,
	.names = names,
	.can_sleep = false,
	.get = get,
	.set = set,
	.get_direction = get_direction,
	.direction_input = direction_input,
	.direction_output = direction_output,
};

static int __init daisee_test_gpio_init(void)
{
	return gpiochip_add_data(&chip, NULL);
}

static void __exit daisee_test_gpio_exit(void)
{
	gpiochip_remove(&chip);
}

module_init(daisee_test_gpio_init);
module_exit(daisee_test_gpio_exit);
MODULE_DESCRIPTION("Eight GPIO lines that keep their values, for DAISEE's image tests");
MODULE_LICENSE("GPL");
