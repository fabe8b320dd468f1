<?php
/**
 * Plugin Name:       KYC Bridge
 * Description:       Identity verification (KYC) with Persona through your kyc-bridge service: consent modal and verify button, content gating, an admin overview and privacy tools.
 * Version:           0.1.0
 * Requires at least: 6.1
 * Requires PHP:      8.0
 * Author:            kyc-bridge
 * License:           GPL-2.0-or-later
 * License URI:       https://www.gnu.org/licenses/gpl-2.0.html
 * Text Domain:       kyc-bridge
 * Domain Path:       /languages
 *
 * @package KycBridge
 */

namespace KycBridge;

defined( 'ABSPATH' ) || exit;

const VERSION = '0.1.0';

/*
 * Persona's embedded client, pinned. Change the version here after testing a new release; the
 * URL can be replaced with the `kycb_persona_script_url` filter (e.g. a self-hosted copy).
 */
const PERSONA_JS_VERSION = '5.5.0';

define( 'KYCB_PLUGIN_FILE', __FILE__ );
define( 'KYCB_PLUGIN_DIR', __DIR__ . '/' );

require_once __DIR__ . '/includes/class-settings.php';
require_once __DIR__ . '/includes/class-bridge-client.php';
require_once __DIR__ . '/includes/class-status.php';
require_once __DIR__ . '/includes/class-kyc-lookup.php';
require_once __DIR__ . '/includes/class-frontend.php';
require_once __DIR__ . '/includes/class-self-service.php';
require_once __DIR__ . '/includes/class-purchases.php';
require_once __DIR__ . '/includes/class-registration.php';
require_once __DIR__ . '/includes/class-rest.php';
require_once __DIR__ . '/includes/class-admin-page.php';
require_once __DIR__ . '/includes/class-admin-actions.php';
require_once __DIR__ . '/includes/class-privacy.php';
require_once __DIR__ . '/includes/class-lifecycle.php';
require_once __DIR__ . '/includes/class-plugin.php';
require_once __DIR__ . '/includes/functions.php';

register_activation_hook( __FILE__, array( Lifecycle::class, 'activate' ) );
register_deactivation_hook( __FILE__, array( Lifecycle::class, 'deactivate' ) );

Plugin::register();
