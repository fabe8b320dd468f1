<?php
/**
 * Uninstall: removes the plugin's options, transients and capability. The bridge keeps its own data.
 *
 * @package KycBridge
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

require_once __DIR__ . '/includes/class-settings.php';
require_once __DIR__ . '/includes/class-lifecycle.php';

\KycBridge\Lifecycle::uninstall();
