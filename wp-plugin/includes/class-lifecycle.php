<?php
/**
 * Activation, deactivation and uninstall.
 *
 * @package KycBridge
 */

namespace KycBridge;

defined( 'ABSPATH' ) || exit;

/**
 * What the plugin adds to a site, and takes away again on uninstall.
 */
final class Lifecycle {

	/**
	 * Capability that opens the "KYC Verifications" page.
	 */
	const CAPABILITY = 'kycb_view_verifications';

	/**
	 * Capability for the fixes on that page: re-sync, retry failed jobs, resend a link. (Export and
	 * erasure need WordPress's own export_others_personal_data and erase_others_personal_data.)
	 */
	const MANAGE_CAPABILITY = 'kycb_manage_verifications';

	/**
	 * Option holding the plugin version whose capabilities the roles have.
	 */
	const VERSION_OPTION = 'kycb_version';

	/**
	 * User option (screen option) with the rows per page of the verification lists.
	 */
	const PER_PAGE_OPTION = 'kycb_inquiries_per_page';

	/**
	 * Roles granted the capability on activation.
	 *
	 * @var string[]
	 */
	const ROLES = array( 'administrator' );

	/**
	 * Grant the capability and create the token option without autoload.
	 */
	public static function activate() {
		self::grant_capabilities();
		Purchases::schedule( true );
		// The token is read only when the bridge is called: keep it out of the autoloaded options.
		add_option( Settings::TOKEN_OPTION, '', '', 'no' );
		add_option( Settings::OPTION, Settings::defaults() );
	}

	/**
	 * Give ROLES the plugin's capabilities, and remember for which version.
	 */
	public static function grant_capabilities() {
		foreach ( self::ROLES as $role_name ) {
			$role = get_role( $role_name );
			if ( $role ) {
				$role->add_cap( self::CAPABILITY );
				$role->add_cap( self::MANAGE_CAPABILITY );
			}
		}
		update_option( self::VERSION_OPTION, VERSION );
	}

	/**
	 * After an update without re-activation, grant capabilities a newer version added (admin_init).
	 */
	public static function maybe_upgrade() {
		if ( get_option( self::VERSION_OPTION ) !== VERSION ) {
			self::grant_capabilities();
		}
	}

	/**
	 * Cached bridge answers are dropped; settings stay until uninstall.
	 */
	public static function deactivate() {
		self::delete_transients();
		wp_clear_scheduled_hook( 'kycb_release_orders' );
	}

	/**
	 * Remove every option, transient and capability of the plugin (uninstall.php).
	 */
	public static function uninstall() {
		delete_option( Settings::OPTION );
		delete_option( Settings::TOKEN_OPTION );
		delete_option( self::VERSION_OPTION );
		self::delete_transients();
		foreach ( wp_roles()->role_objects as $role ) {
			$role->remove_cap( self::CAPABILITY );
			$role->remove_cap( self::MANAGE_CAPABILITY );
		}
		delete_metadata( 'user', 0, self::PER_PAGE_OPTION, '', true );
		delete_metadata( 'user', 0, 'kycb_pending_verification', '', true );
		wp_clear_scheduled_hook( 'kycb_release_orders' );
	}

	/**
	 * Delete all of the plugin's transients (they are all named kycb_…).
	 */
	public static function delete_transients() {
		global $wpdb;
		// phpcs:ignore WordPress.DB.DirectDatabaseQuery -- no API lists transients by prefix.
		$names = $wpdb->get_col(
			$wpdb->prepare(
				"SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE %s",
				$wpdb->esc_like( '_transient_kycb_' ) . '%'
			)
		);
		foreach ( $names as $name ) {
			delete_transient( substr( $name, strlen( '_transient_' ) ) );
		}
	}
}
