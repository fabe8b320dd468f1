<?php
/**
 * Registers every hook of the plugin in one place.
 *
 * @package KycBridge
 */

namespace KycBridge;

defined( 'ABSPATH' ) || exit;

/**
 * The loader: which class answers which WordPress hook.
 */
final class Plugin {

	/**
	 * Hook everything up. Called once from the main plugin file.
	 */
	public static function register() {
		add_action( 'init', array( self::class, 'load_textdomain' ) );
		add_action( 'init', array( Frontend::class, 'register' ) );
		add_action( 'init', array( Self_Service::class, 'register' ) );
		Purchases::register();
		Registration::register();
		add_action( 'show_user_profile', array( Self_Service::class, 'profile_section' ) );
		add_action( 'admin_footer-profile.php', array( Self_Service::class, 'profile_form' ) );
		add_action( 'load-profile.php', array( Self_Service::class, 'load_profile' ) );
		add_action( 'admin_post_' . Self_Service::ACTION, array( Self_Service::class, 'handle' ) );
		add_action( 'rest_api_init', array( Rest::class, 'register_routes' ) );

		add_action( 'admin_init', array( Settings::class, 'register' ) );
		add_action( 'admin_init', array( Lifecycle::class, 'maybe_upgrade' ) );
		add_action( 'admin_menu', array( Settings::class, 'add_page' ) );
		add_action( 'admin_post_kycb_test_connection', array( Settings::class, 'handle_test_connection' ) );
		add_action( 'admin_menu', array( Admin_Page::class, 'add_page' ) );
		add_action( 'admin_enqueue_scripts', array( Admin_Page::class, 'enqueue' ) );
		add_action( 'admin_post_' . Admin_Actions::ACTION, array( Admin_Actions::class, 'handle' ) );
		add_filter( 'set_screen_option_' . Admin_Page::PER_PAGE_OPTION, array( Admin_Page::class, 'save_per_page' ), 10, 3 );
		add_filter( 'manage_users_columns', array( Admin_Page::class, 'users_column' ) );
		add_filter( 'manage_users_custom_column', array( Admin_Page::class, 'users_column_value' ), 10, 3 );
		add_filter( 'plugin_action_links_' . plugin_basename( KYCB_PLUGIN_FILE ), array( Settings::class, 'action_links' ) );

		add_filter( 'wp_privacy_personal_data_exporters', array( Privacy::class, 'register_exporter' ) );
		add_filter( 'wp_privacy_personal_data_erasers', array( Privacy::class, 'register_eraser' ) );

		// The same check as kycb_is_verified(), for themes and checkout plugins that prefer a filter.
		add_filter( 'kycb_user_is_verified', array( Kyc_Lookup::class, 'filter_is_verified' ), 10, 3 );
	}

	/**
	 * Translations from languages/ (WordPress also loads them from wp-content/languages/plugins).
	 */
	public static function load_textdomain() {
		load_plugin_textdomain( 'kyc-bridge', false, dirname( plugin_basename( KYCB_PLUGIN_FILE ) ) . '/languages' );
	}
}
